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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from gantool.errors import BackendUnavailable
from gantool.runtime.backends.base import Probe
from gantool.runtime.backends.torch_backend import TorchBackend
from gantool.spec import ModelSpec

CXX_COMPILERS = ("g++", "c++", "clang++")  # what Inductor's CPU code path looks for, besides $CXX
# Where torch.compile's own failures are defined (BackendCompilerFailed, InductorError, InvalidCxxCompiler,
# TritonMissing, ...): torch exports no public compiler exception (torch 2.13's torch.compiler has none), and their
# modules torch._dynamo.exc and torch._inductor.exc are private, free to move in any release. So a failure is
# recognised by the name of the module its class (or a base class) comes from: a string, no private import.
COMPILER_MODULES = ("torch._dynamo", "torch._inductor")


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
        with torch.inference_mode(), compile_errors_in_one_line():
            self._forward(torch.from_numpy(trial))
        return compiled

    def run(self, batch: np.ndarray) -> np.ndarray:
        """TorchBackend.run; a failing recompile (a new input shape) is the same one line as at load."""
        with compile_errors_in_one_line():
            return super().run(batch)

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None] | None:
        """TorchBackend.compute_fn, with a failing recompile reported as at load."""
        compute = super().compute_fn(batch)
        if compute is None:
            return None

        def guarded() -> None:
            with compile_errors_in_one_line():
                compute()

        return guarded


def is_compile_error(exc: BaseException) -> bool:
    """Whether EXC is torch.compile failing (Dynamo or Inductor), by the module its class or a base comes from."""
    return any(
        cls.__module__ == name or cls.__module__.startswith(name + ".")
        for cls in type(exc).__mro__
        for name in COMPILER_MODULES
    )


@contextmanager
def compile_errors_in_one_line() -> Iterator[None]:
    """Turn a torch.compile failure into BackendUnavailable; any other exception passes through unchanged."""
    try:
        yield
    except Exception as exc:
        if not is_compile_error(exc):
            raise
        raise _cannot_compile(exc) from None


def _cannot_compile(exc: BaseException) -> BackendUnavailable:
    """BackendCompilerFailed (no C++ compiler, no Triton) as one line: its first line names the cause."""
    lines = str(exc).strip().splitlines()
    return BackendUnavailable(
        f"torch.compile cannot compile on this machine: {lines[0] if lines else type(exc).__name__}"
    )
