"""PyTorch eager backend: the reference every exported backend is compared against, on CPU or CUDA.

Loads the safetensors checkpoint (no pickle) and runs the generator under
``torch.inference_mode``. torch is imported in ``_load``, never at module
import, so listing backends stays cheap.

On CUDA it runs FP32 or FP16 (``--precision fp16``: the module's weights are
cast with ``.half()`` and inputs with it; outputs come back float32 like every
backend's). FP16 on CPU is refused: PyTorch's CPU kernels for half precision are
slow or missing, and ONNX Runtime already runs the FP16 export on CPU.

bf16 (``--precision bf16``) runs the FP32 module under ``torch.autocast``: the
convolutions and matrix products in bfloat16, normalisations and the rest in
FP32, as PyTorch's autocast lists decide. On CUDA always; on the CPU only
where it has bf16 arithmetic (AVX-512 BF16 or AMX: ``gantool doctor``), since
elsewhere oneDNN emulates it, slower than FP32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gantool.artifacts import is_onnx, resolve_checkpoint
from gantool.checkpoint import load_generator, read_spec
from gantool.errors import ArtifactError, BackendUnavailable, GantoolError, UsageError
from gantool.machine import cpu_features
from gantool.runtime.backends.base import Backend, Probe
from gantool.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

CUDA_TORCH_HINT = "install a CUDA build of torch (pytorch.org, 'Get started')"


class TorchBackend(Backend):
    """The checkpoint's generator as an eval-mode ``nn.Module``: CPU (FP32, bf16) or CUDA (FP32, FP16, bf16)."""

    name: ClassVar[str] = "torch"
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    install_hint: ClassVar[str] = "pip install torch"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "bf16")

    def __init__(self, device: str | None = None, precision: str | None = None) -> None:
        super().__init__(device, precision)
        if self.precision == "fp16" and self.device != "cuda":
            raise UsageError(f"fp16 on the {self.name} backend needs --device cuda")
        if self.precision == "bf16" and self.device == "cpu" and not cpu_features()["bf16"]:
            raise UsageError(
                f"bf16 on the {self.name} backend needs a CPU with AVX-512 BF16 or AMX, which this one lacks "
                "(gantool doctor): use fp32, or --device cuda"
            )
        self.module: nn.Module | None = None
        self._torch: Any = None
        self._one_by_one = False
        self._dtype: Any = None
        self._channels_last = False

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        if model.is_file() and is_onnx(model):
            raise ArtifactError(
                f"{model} is an ONNX file: the {cls.name} backend needs the checkpoint or run dir "
                "(or use --backend onnxruntime)"
            )
        return resolve_checkpoint(model, direction)

    @classmethod
    def peek_spec(cls, artifact: Path) -> ModelSpec | None:
        return read_spec(artifact)  # safetensors header only: no torch

    @classmethod
    def probe(cls) -> Probe:
        """torch's version, the CPU, and every CUDA device this torch build sees (or why it sees none)."""
        available = cls.availability()
        if not available.ok:
            return Probe(installed=False, note=available.reason)
        import torch

        devices = ["cpu"]
        note = ""
        if torch.version.cuda is None:
            note = f"CPU build of torch: for CUDA, {CUDA_TORCH_HINT}"
        elif not torch.cuda.is_available():
            note = f"torch built for CUDA {torch.version.cuda} sees no usable GPU (driver missing or too old?)"
        else:
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                devices.append(
                    f"cuda:{index} {props.name} (sm {props.major}.{props.minor}, {props.total_memory // 2**20} MiB)"
                )
        return Probe(installed=True, version=torch.__version__, devices=tuple(devices), note=note)

    def _load(self, artifact: Path) -> ModelSpec:
        import torch

        from gantool.models import GENERATORS

        if self.device == "cuda" and not torch.cuda.is_available():
            build = "a CPU build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise BackendUnavailable(
                f"--device cuda: torch {torch.__version__} ({build}) sees no CUDA device"
                + (f"; {CUDA_TORCH_HINT}" if torch.version.cuda is None else "")
            )
        arch = read_spec(artifact).arch
        if arch not in GENERATORS:
            raise ArtifactError(f"{artifact}: this gantool version cannot build a {arch!r} generator")
        module, spec = load_generator(artifact)
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        module = module.to(self.device, self._dtype)
        # On CUDA a translator runs channels_last (NHWC): cuDNN's tensor-core convolution kernels work in NHWC,
        # so with the default NCHW layout every conv pays for transposes around it; PyTorch's channels_last
        # guide recommends it for conv nets on Volta and newer, FP16 most of all. A GAN's MLP has no convs.
        self._channels_last = spec.latent_dim is None and self.device == "cuda"
        if self._channels_last:
            module = module.to(memory_format=torch.channels_last)
        # A translator on CPU runs image by image: its InstanceNorm makes each image independent anyway, and
        # oneDNN picks batch-size-dependent kernels for strided convolutions, so a batched run can differ in the
        # last bit (seen at small channel counts) and flip a pixel. One by one, the output does not depend on the
        # batch size, and it is no slower (ResNet-9 at 128², 2 cores: 68–69 ms/image vs 71–72 in a batch of 4).
        self._one_by_one = spec.latent_dim is None and self.device == "cpu"
        self._torch = torch
        self.module = self._prepare(module, spec)
        return spec

    def _prepare(self, module: nn.Module, spec: ModelSpec) -> Any:
        """What ``run`` calls, once everything ``_forward`` reads is set: the module itself; torch-compile wraps it."""
        return module

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        assert self.module is not None and torch is not None, "load() first"
        self.check_input(batch)
        try:
            with torch.inference_mode(), self._autocast():
                return self._forward(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        except torch.cuda.OutOfMemoryError:
            raise GantoolError(f"out of GPU memory at a batch of {len(batch)}: try a smaller --batch-size") from None

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None] | None:
        """On CUDA: the batch copied to the GPU once (dtype and layout as ``run`` uses); each call runs the module and
        ``torch.cuda.synchronize()``. None on the CPU, where compute-only is end to end."""
        torch = self._torch
        module = self.module
        assert module is not None and torch is not None, "load() first"
        if self.device != "cuda":
            return None
        self.check_input(batch)
        with torch.inference_mode():  # an inference tensor, like the ones run() makes, so compiled guards match
            inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device, self._dtype)
            if self._channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
        torch.cuda.synchronize()

        def compute() -> None:
            with torch.inference_mode(), self._autocast():
                module(inputs)
            torch.cuda.synchronize()

        return compute

    def _autocast(self) -> Any:
        """bf16: autocast on the backend's device (weights stay FP32); otherwise a context that does nothing."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return self._torch.autocast(device_type=self.device, dtype=self._torch.bfloat16)

    def _forward(self, inputs: Any) -> np.ndarray:
        """float32 CPU tensor in → float32 numpy out; on CUDA ``.cpu()`` waits for the GPU to finish."""
        torch = self._torch
        module = self.module
        assert module is not None
        if self._one_by_one:
            outputs = np.empty(inputs.shape, dtype=np.float32)  # a translator keeps C×H×W
            for i in range(len(inputs)):
                outputs[i] = module(inputs[i : i + 1])[0].float().numpy()
            return outputs
        inputs = inputs.to(self.device, self._dtype, non_blocking=True)
        if self._channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return module(inputs).float().contiguous().cpu().numpy()  # NCHW again if it ran channels_last
