"""torch.compile backend: the torch backend with the module compiled by TorchInductor.

On CUDA the mode is ``reduce-overhead``: Inductor's kernels replayed as CUDA
graphs, one per input shape, so a small batch pays one launch instead of one
per layer. A graph's output buffer is reused by the next replay; ``run`` copies
it to the host at once, so no caller ever sees it overwritten. On CPU the
default mode compiles C++ kernels, which needs a working C++ compiler.

Compilation is lazy in PyTorch (it happens at the first call, and again for
a new input shape), so ``load`` runs one batch: a machine where Inductor cannot
compile (no C++ compiler, no Triton for the GPU) is refused there in one line,
and a later recompile that fails is the same one line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from gantool.errors import BackendUnavailable
from gantool.runtime.backends.base import Probe
from gantool.runtime.backends.torch_backend import TorchBackend
from gantool.spec import ModelSpec

CXX_COMPILERS = ("g++", "c++", "clang++")  # what Inductor's CPU code path looks for, besides $CXX


class TorchCompileBackend(TorchBackend):
    """``torch.compile(module)``: CUDA graphs on the GPU (mode reduce-overhead), C++ kernels on the CPU."""

    name: ClassVar[str] = "torch-compile"

    @classmethod
    def probe(cls) -> Probe:
        """torch's probe, plus what Inductor needs on each device: a C++ compiler (CPU), Triton (CUDA)."""
        probe = TorchBackend.probe()
        if not probe.installed:
            return probe
        needs = []
        if not any(shutil.which(compiler) for compiler in CXX_COMPILERS):
            needs.append("no C++ compiler found (g++ or clang++): CPU compile will fail")
        if len(probe.devices) > 1 and importlib.util.find_spec("triton") is None:
            needs.append("Triton is not installed: CUDA compile will fail")
        note = "; ".join(part for part in (probe.note, *needs) if part)
        return Probe(installed=True, version=probe.version, devices=probe.devices, note=note)

    def _prepare(self, module: Any, spec: ModelSpec) -> Any:
        import torch

        mode = "reduce-overhead" if self.device == "cuda" else None  # None: Inductor's default mode
        compiled = torch.compile(module, mode=mode)
        trial = np.zeros((1, spec.latent_dim) if spec.latent_dim is not None else (1, *spec.image_shape), np.float32)
        self.module = compiled  # what _forward calls
        try:
            with torch.inference_mode():
                self._forward(torch.from_numpy(trial))
        except torch._dynamo.exc.TorchDynamoException as exc:
            raise _cannot_compile(exc) from None
        return compiled

    def run(self, batch: np.ndarray) -> np.ndarray:
        """TorchBackend.run; a failing recompile (a new input shape) is the same one line as at load."""
        try:
            return super().run(batch)
        except self._torch._dynamo.exc.TorchDynamoException as exc:
            raise _cannot_compile(exc) from None

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None] | None:
        """TorchBackend.compute_fn, with a failing recompile reported as at load."""
        compute = super().compute_fn(batch)
        if compute is None:
            return None
        dynamo_error = self._torch._dynamo.exc.TorchDynamoException

        def guarded() -> None:
            try:
                compute()
            except dynamo_error as exc:
                raise _cannot_compile(exc) from None

        return guarded


def _cannot_compile(exc: BaseException) -> BackendUnavailable:
    """BackendCompilerFailed (no C++ compiler, no Triton) as one line: its first line names the cause."""
    lines = str(exc).strip().splitlines()
    return BackendUnavailable(
        f"torch.compile cannot compile on this machine: {lines[0] if lines else type(exc).__name__}"
    )
