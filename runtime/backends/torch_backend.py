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

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(device)
        self.module: nn.Module | None = None
        self._torch: Any = None

    @classmethod
    def resolve(cls, model: Path) -> Path:
        if model.is_file() and is_onnx(model):
            raise ArtifactError(
                f"{model} is an ONNX file: the torch backend needs the checkpoint or run dir (or use --backend onnxruntime)"
            )
        return resolve_checkpoint(model)

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
        return spec

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        assert self.module is not None and torch is not None, "load() first"
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            outputs = self.module(inputs)
            return outputs.float().cpu().numpy()
