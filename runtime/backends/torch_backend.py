"""PyTorch eager backend: the reference every exported backend is compared against.

Loads the safetensors checkpoint (no pickle) and runs the generator under
``torch.inference_mode``. torch is imported in ``_load``, never at module
import, so listing backends stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gantool.artifacts import is_onnx, resolve_checkpoint
from gantool.checkpoint import load_generator, read_spec
from gantool.errors import ArtifactError, BackendUnavailable
from gantool.runtime.backends.base import Backend
from gantool.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn


class TorchBackend(Backend):
    """The checkpoint's generator as an eval-mode ``nn.Module`` (CPU; CUDA when asked and present)."""

    name: ClassVar[str] = "torch"
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    install_hint: ClassVar[str] = "pip install torch"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def __init__(self, device: str | None = None, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        self.module: nn.Module | None = None
        self._torch: Any = None
        self._one_by_one = False

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        if model.is_file() and is_onnx(model):
            raise ArtifactError(
                f"{model} is an ONNX file: the torch backend needs the checkpoint or run dir (or use --backend onnxruntime)"
            )
        return resolve_checkpoint(model, direction)

    @classmethod
    def peek_spec(cls, artifact: Path) -> ModelSpec | None:
        return read_spec(artifact)  # safetensors header only: no torch

    def _load(self, artifact: Path) -> ModelSpec:
        import torch

        from gantool.models import GENERATORS

        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("the torch backend cannot use cuda: this torch build sees no CUDA device")
        arch = read_spec(artifact).arch
        if arch not in GENERATORS:
            raise ArtifactError(f"{artifact}: this gantool version cannot build a {arch!r} generator")
        module, spec = load_generator(artifact)
        self.module = module.to(self.device)
        self._torch = torch
        # A translator on CPU runs image by image: its InstanceNorm makes each image independent anyway, and
        # oneDNN picks batch-size-dependent kernels for strided convolutions, so a batched run can differ in the
        # last bit (seen at small channel counts) and flip a pixel. One by one, the output does not depend on the
        # batch size, and it is no slower (ResNet-9 at 128², 2 cores: 68–69 ms/image vs 71–72 in a batch of 4).
        self._one_by_one = spec.latent_dim is None and self.device == "cpu"
        return spec

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        assert self.module is not None and torch is not None, "load() first"
        self.check_input(batch)
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            if not self._one_by_one:
                return self.module(inputs).float().cpu().numpy()
            outputs = np.empty(inputs.shape, dtype=np.float32)  # a translator keeps C×H×W
            for i in range(len(inputs)):
                outputs[i] = self.module(inputs[i : i + 1])[0].float().numpy()
            return outputs
