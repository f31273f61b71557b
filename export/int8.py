"""The INT8 variant of a generator: a static QDQ quantization of its FP32 export, calibrated, then judged by quality.

Why these choices:

- **QDQ** (QuantizeLinear → DequantizeLinear pairs in front of float ops),
  not onnxruntime's QOperator format: one file serves onnxruntime, whose CPU
  provider fuses each Q/DQ→Conv group into an INT8 kernel (VNNI where the CPU
  has it), and TensorRT, which takes INT8 from explicit Q/DQ nodes only in its
  strongly typed 11.x.
- **Symmetric signed INT8** for weights (per output channel) and activations
  (per tensor): TensorRT's quantization is symmetric, zero point 0, so an
  asymmetric uint8 file would not build there. On this repository's CPU it
  cost nothing measurable: in one ad-hoc comparison on the reference 128²
  translator, signed activations ran within noise of unsigned ones.
- **Only the MAC-heavy ops are quantized**: Conv, ConvTranspose, Gemm, MatMul.
  InstanceNormalization, Tanh, the residual Adds, ReLU and Pad stay FP32 (an
  onnxruntime QDQ "quantize everything" would put Q/DQ around them too, and
  they hold no multiply-accumulates to gain from). Their inputs are quantized
  only where a quantized op reads them.
- **Min/max calibration** on a seeded set (``calibration.py``): the scales
  cover the ranges the model really produces on real inputs.
- ``exclude`` keeps chosen layers in FP32: node names, or ``first`` / ``last``
  for the first and last quantizable layer (the ones that touch pixels or
  latents). Measured on the trained default models (README, RESULTS.md):
  quantizing every layer is already inside the quality noise floor, so
  nothing is excluded by default; ``--int8-report`` says which layers lose
  most, for models where that is not so.

Whether the file is good enough is not a max-abs-error tolerance: the quality
room's verdict (``gantool eval``'s, on the same inputs, against FP32) decides,
and the verdict is stored in the file's metadata (``gantool.quality``), where
``--backend auto`` reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from gantool.errors import GantoolError, UsageError
from gantool.export.interface import GraphInterface
from gantool.spec import PRECISION_KEY, QUALITY_KEY

QUANTIZED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
INT8_KEY = "gantool.int8"  # metadata: how the file was quantized (calibration, layers kept in FP32)
CALIB_BATCH = 16
FIRST, LAST = "first", "last"


@dataclass(frozen=True)
class Int8Settings:
    """What ``--int8`` was asked for: calibration, layers kept in FP32, the verdict's N, and ``--force-int8``."""

    calib: int
    calib_data: Path | None = None
    exclude: tuple[str, ...] = ()
    verdict_n: int = 1000
    force: bool = False
    report: bool = False
    seed: int = 0


@dataclass
class Int8Result:
    """One written (or refused) INT8 file: its verdict, how far it is from the FP32 export, what stayed FP32."""

    path: Path
    max_abs_diff: float  # against the FP32 export on the parity inputs: informative, the verdict decides
    verdict: dict[str, Any]
    kept_float: list[str]
    calibration: str
    layers: list[dict[str, Any]] = field(default_factory=list)  # the --int8-report rows
    precision: str = "int8"

    @property
    def ok(self) -> bool:
        return bool(self.verdict.get("passed")) or bool(self.verdict.get("forced"))


def quantizable_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The nodes --int8 quantizes, in graph order (the exporter writes it topologically)."""
    return [node for node in model.graph.node if node.op_type in QUANTIZED_OPS]


def resolve_exclusions(model: onnx.ModelProto, exclude: Sequence[str], where: str) -> list[str]:
    """``first`` / ``last`` / node names → node names; an unknown name is a usage error listing the real ones."""
    nodes = [node.name for node in quantizable_nodes(model)]
    if not nodes:
        raise GantoolError(f"{where} has no {', '.join(QUANTIZED_OPS)} layer to quantize")
    names: list[str] = []
    for item in exclude:
        name = nodes[0] if item == FIRST else nodes[-1] if item == LAST else item
        if name not in nodes:
            shown = ", ".join(nodes[:6]) + (" …" if len(nodes) > 6 else "")
            raise UsageError(f"--int8-exclude {item!r}: {where} has no such layer (first, last, or one of: {shown})")
        if name not in names:
            names.append(name)
    return names


def quantize(
    fp32: Path, interface: GraphInterface, inputs: np.ndarray, kept_float: list[str], work: Path
) -> onnx.ModelProto:
    """The QDQ INT8 model of the FP32 file at ``fp32``, calibrated on ``inputs``; scratch files go in ``work``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from gantool.export.onnx_export import quiet

    out = work / "quantized.onnx"
    try:
        with quiet():  # onnxruntime logs a "consider pre-processing" warning per call through the root logger
            quantize_static(
                str(fp32), str(out), calibration_reader(interface.input_name, inputs),
                quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                per_channel=True, op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=kept_float,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - onnxruntime's quantizer raises many types (ValueError, RuntimeError, ...)
        raise GantoolError(f"INT8 quantization of {fp32.name} failed: {type(exc).__name__}: {exc}") from None
    model = onnx.load(str(out), load_external_data=False)
    if not any(node.op_type == "QuantizeLinear" for node in model.graph.node):
        raise GantoolError(f"INT8 quantization of {fp32.name} quantized nothing: every layer was excluded")
    return model


def stamp(model: onnx.ModelProto, source: onnx.ModelProto, details: dict[str, Any], verdict: dict[str, Any]) -> None:
    """The FP32 file's spec, precision ``int8``, how it was quantized and its verdict, as the file's metadata."""
    from gantool.spec import METADATA_KEY

    spec = next(prop.value for prop in source.metadata_props if prop.key == METADATA_KEY)
    model.producer_name, model.producer_version = source.producer_name, source.producer_version
    model.doc_string = source.doc_string.replace("(fp32)", "(int8 QDQ)")
    del model.metadata_props[:]
    onnx.helper.set_model_props(
        model,
        {METADATA_KEY: spec, PRECISION_KEY: "int8", INT8_KEY: json.dumps(details), QUALITY_KEY: json.dumps(verdict)},
    )


def calibration_reader(input_name: str, inputs: np.ndarray) -> Any:
    """onnxruntime's CalibrationDataReader over ``inputs``, CALIB_BATCH at a time (a fresh one per pass)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type stubs
        def __init__(self) -> None:
            self._batches = iter(inputs[i : i + CALIB_BATCH] for i in range(0, len(inputs), CALIB_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    return Batches()


@dataclass
class Staging:
    """A folder beside the destination where the INT8 file is written and judged before it is renamed into place."""

    path: Path
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent))

    @property
    def file(self) -> Path:
        return self.folder / self.path.name

    def commit(self) -> None:
        os.replace(self.file, self.path)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
