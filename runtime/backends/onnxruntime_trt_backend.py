"""onnxruntime with NVIDIA's TensorRT execution provider: TensorRT speed from the plain ONNX export.

onnxruntime hands the graph to TensorRT, which builds an engine for it on the
first run (seconds to minutes) and then runs it; whatever TensorRT cannot take
falls back to the CUDA provider, then the CPU, in that order. Built engines
are cached in a per-user folder keyed by the model's sha256, so the second
start of the same model loads in a moment and a re-exported model never picks
up an engine built for the old one.

``fp16`` (the default) sets ``trt_fp16_enable`` on the FP32 export, the way
onnxruntime's TensorRT provider documentation shows it; ``fp32`` keeps TensorRT
in FP32. Needs ``onnxruntime-gpu`` plus TensorRT's libraries (``gantool[trt]``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from gantool import cache as gantool_cache
from gantool.artifacts import resolve_onnx
from gantool.runtime import gpu
from gantool.runtime.backends.base import Probe
from gantool.runtime.backends.onnxruntime_backend import (
    CONFLICT,
    CUDA_PROVIDER,
    OnnxRuntimeBackend,
    installed_distributions,
    require_provider,
)

TRT_PROVIDER = "TensorrtExecutionProvider"
TRT_HINT = (
    "onnxruntime has no TensorRT execution provider here: it needs onnxruntime-gpu and TensorRT "
    '(pip install "gantool[trt]"; README: GPUs and TensorRT)'
)


def cache_dir(model: bytes) -> Path | None:
    """``<gantool cache>/ort-trt/<sha256 prefix>``: where the TensorRT provider keeps this model's engines.

    None when no cache folder can be had (read-only home): the provider then rebuilds its engine each time.
    """
    try:
        return gantool_cache.cache_dir("ort-trt", hashlib.sha256(model).hexdigest()[:16])
    except OSError:
        return None


class OnnxRuntimeTrtBackend(OnnxRuntimeBackend):
    """An exported ``.onnx`` on onnxruntime's TensorRT provider (CUDA, then CPU, for what TensorRT cannot take)."""

    name: ClassVar[str] = "onnxruntime-trt"
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    precisions: ClassVar[tuple[str, ...]] = ("fp16", "fp32")  # a TensorRT build flag on the FP32 export
    precision_from_file: ClassVar[bool] = False  # always the FP32 file: the precision is the provider's flag

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp16") -> Path:
        return resolve_onnx(model, "fp32", direction=direction)  # TensorRT applies FP16 itself

    @classmethod
    def probe(cls) -> Probe:
        """Installed means onnxruntime lists the TensorRT provider; the GPUs come from cuda-python."""
        available = cls.availability()
        if not available.ok:
            return Probe(installed=False, note=available.reason)
        import onnxruntime as ort

        if TRT_PROVIDER not in ort.get_available_providers():
            return Probe(installed=False, version=ort.__version__, note=TRT_HINT)
        scan = gpu.scan()
        notes = [CONFLICT] if installed_distributions() >= {"onnxruntime", "onnxruntime-gpu"} else []
        notes += [] if scan.usable else [scan.why_not]
        devices = tuple(found.describe() for found in scan.gpus)
        return Probe(installed=True, version=ort.__version__, devices=devices, note="; ".join(notes))

    def providers(self, ort: Any, model: bytes) -> list[Any]:
        require_provider(ort, TRT_PROVIDER, TRT_HINT)
        cache = cache_dir(model)
        # Option names from onnxruntime's TensorRT execution provider docs ("Configurations"); its Python
        # binding parses boolean options from the strings "True"/"False".
        trt_options: dict[str, object] = {"device_id": 0, "trt_fp16_enable": str(self.precision == "fp16")}
        if cache is not None:
            trt_options |= {
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": "True",
                "trt_timing_cache_path": str(cache),
            }
        return [(TRT_PROVIDER, trt_options), (CUDA_PROVIDER, {"device_id": 0}), "CPUExecutionProvider"]

    def start_hint(self) -> str:
        return 'are TensorRT\'s libraries installed and matching this onnxruntime-gpu? pip install "gantool[trt]"'
