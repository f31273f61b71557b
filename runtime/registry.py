"""Backends by name, imported lazily, and the ``auto`` choice between them.

The table maps a name to ``module:Class``; a backend module is imported only
when that backend is asked for, and backend modules import their engine
(torch, onnxruntime, ...) only when loading a model. So importing this
registry, listing backends or checking which are installed costs no heavy
import — the onnxruntime path never pulls in torch.

Adding a backend: one file under runtime/backends/ and one line in BACKENDS.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from gantool.artifacts import is_onnx, resolve_checkpoint, resolve_onnx
from gantool.errors import ArtifactError, BackendUnavailable, UsageError
from gantool.runtime.backends.base import Availability, Backend

BACKENDS: dict[str, str] = {
    "torch": "gantool.runtime.backends.torch_backend:TorchBackend",
    "onnxruntime": "gantool.runtime.backends.onnxruntime_backend:OnnxRuntimeBackend",
}
AUTO = "auto"


def names() -> list[str]:
    """Registered backend names, in registry order."""
    return list(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name``; UsageError listing the choices if there is none."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose from: {', '.join([AUTO, *BACKENDS])}")
    module_name, _, class_name = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def availability(name: str) -> Availability:
    """Whether ``name`` is installed here, without importing its engine."""
    return backend_class(name).availability()


def create(name: str, model: Path, device: str = "cpu", direction: str | None = None) -> Backend:
    """A loaded backend ``name`` for MODEL; BackendUnavailable says how to install a missing one.

    ``direction`` (a2b | b2a) picks the translator of a CycleGAN run dir (a2b when None).
    """
    backend = backend_class(name)(device)
    backend.load(model, direction)
    return backend


def choose(model: Path, requested: str = AUTO, direction: str | None = None) -> tuple[str, str]:
    """Resolve ``auto`` to a backend name for MODEL (``direction``'s translator in a CycleGAN run), with a reason.

    The rule (measured in DESIGN.md: onnxruntime is 2.6–2.9× faster than torch
    eager for the MLP generator on CPU): an ONNX file runs on onnxruntime; a run
    dir or checkpoint runs on onnxruntime when its exported ONNX sibling exists
    and onnxruntime is installed, otherwise on torch (also when the export is
    older than the checkpoint: a stale export must not stand in for a
    retrained model). A named backend is returned as is, once known to exist.
    """
    if requested != AUTO:
        backend_class(requested)
        return requested, f"{requested} (requested)"
    ort_ok = availability("onnxruntime")
    if model.is_file() and is_onnx(model):
        if not ort_ok.ok:
            raise BackendUnavailable(f"{model} needs the onnxruntime backend, which is unavailable: {ort_ok.reason}")
        return "onnxruntime", "onnxruntime (auto: MODEL is an ONNX file)"
    try:
        onnx_file: Path | None = resolve_onnx(model, direction=direction)
    except ArtifactError:
        onnx_file = None
    if onnx_file is None:
        why = "no exported ONNX beside the checkpoint"
    elif _older_than_checkpoint(onnx_file, model, direction):
        why = f"{onnx_file.name} is older than the checkpoint (re-run gantool export)"
    elif not ort_ok.ok:
        why = ort_ok.reason
    else:
        return "onnxruntime", f"onnxruntime (auto: found {onnx_file.name}, onnxruntime is installed)"
    torch_ok = availability("torch")
    if not torch_ok.ok:
        raise BackendUnavailable(f"no backend can run {model}: {why}, and torch is unavailable: {torch_ok.reason}")
    return "torch", f"torch (auto: {why})"


def _older_than_checkpoint(onnx_file: Path, model: Path, direction: str | None) -> bool:
    """A stale export (the checkpoint was rewritten after it) must not silently stand in for the checkpoint."""
    try:
        return onnx_file.stat().st_mtime < resolve_checkpoint(model, direction).stat().st_mtime
    except (ArtifactError, OSError):
        return False
