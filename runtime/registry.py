"""Backends by name, imported lazily, and the ``auto`` choice of backend, device and precision.

The table maps a name to ``module:Class``; a backend module is imported only
when that backend is asked for, and backend modules import their engine
(torch, onnxruntime, tensorrt) only when loading a model. So importing this
registry, listing backends or checking which are installed costs no heavy
import — the onnxruntime path never pulls in torch.

Adding a backend: one file under runtime/backends/ and one line in BACKENDS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gantool.artifacts import is_engine, is_onnx, resolve_checkpoint, resolve_engine, resolve_onnx
from gantool.errors import ArtifactError, BackendUnavailable, UsageError
from gantool.runtime import gpu
from gantool.runtime.backends.base import PRECISIONS, Availability, Backend

BACKENDS: dict[str, str] = {
    "torch": "gantool.runtime.backends.torch_backend:TorchBackend",
    "torch-compile": "gantool.runtime.backends.torch_compile_backend:TorchCompileBackend",
    "onnxruntime": "gantool.runtime.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "onnxruntime-trt": "gantool.runtime.backends.onnxruntime_trt_backend:OnnxRuntimeTrtBackend",
    "tensorrt": "gantool.runtime.backends.tensorrt_backend:TensorrtBackend",
}
AUTO = "auto"
DEVICES = (AUTO, "cpu", "cuda")


@dataclass(frozen=True)
class Choice:
    """What runs MODEL: backend ``name`` on ``device`` at ``precision``, and why (shown as ``backend: <reason>``)."""

    name: str
    device: str
    precision: str
    reason: str


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


def check_device(device: str, what: str = "device") -> str:
    """``device`` if it is auto, cpu or cuda; UsageError (exit 2) naming ``what`` otherwise."""
    if device not in DEVICES:
        raise UsageError(f"{what} must be one of {', '.join(DEVICES)}, got {device!r}")
    return device


def check_precision(precision: str | None, what: str = "precision") -> str | None:
    """``precision`` if it is None (the backend's default), fp32 or fp16; UsageError otherwise."""
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"{what} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def create(
    name: str, model: Path, device: str | None = None, direction: str | None = None, precision: str | None = None
) -> Backend:
    """A loaded backend ``name`` for MODEL on ``device`` (None: the backend's default) at ``precision``.

    BackendUnavailable says how to install a missing backend. ``direction``
    (a2b | b2a) picks the translator of a CycleGAN run dir (a2b when None).
    """
    backend = backend_class(name)(device, precision)
    backend.load(model, direction)
    return backend


def default_device(name: str, scan: gpu.GpuScan | None = None) -> str:
    """The device ``--device auto`` means for a named backend: cuda when it has one it can use here, else its default.

    Decided cheaply (cuda-python, then the backend's own CUDA check only when a
    GPU is there), so asking on a CPU-only machine imports no engine.
    """
    backend = backend_class(name)
    if "cuda" not in backend.devices or backend.devices[0] == "cuda":
        return backend.devices[0]
    scan = scan or gpu.scan()
    return "cuda" if scan.usable and _sees_cuda(name) else backend.devices[0]


def choose(
    model: Path,
    requested: str = AUTO,
    direction: str | None = None,
    device: str = AUTO,
    precision: str | None = None,
) -> Choice:
    """Resolve ``auto`` (backend and/or device) for MODEL (``direction``'s translator in a CycleGAN run).

    A named backend is returned as asked, once known to exist; ``device=auto``
    then means cuda if that backend can use a GPU here, else its default device.

    ``auto`` picks, in order (issue 5 replaces this rule with measurement):

    1. an ``.engine`` MODEL → tensorrt; an ``.onnx`` MODEL → onnxruntime (on cuda when it can be).
    2. with a usable NVIDIA GPU (asked through cuda-python, never torch), unless ``device=cpu``:
       tensorrt when a fresh engine (not older than the checkpoint), built for this GPU's compute capability,
       lies beside the checkpoint and TensorRT is installed; else onnxruntime on cuda when a fresh ONNX export exists and onnxruntime's CUDA
       execution provider is there; else torch on cuda when torch sees CUDA.
    3. otherwise the CPU rule (DESIGN.md measured onnxruntime 2.6–2.9× faster than torch eager for the MLP
       generator on CPU): onnxruntime when a fresh ONNX export exists, else torch.

    A stale artifact (older than its checkpoint) never stands in for a retrained model. ``precision`` None
    means each backend's default (fp16 for tensorrt); a backend that lacks the asked precision is passed over.
    """
    check_device(device)
    check_precision(precision)
    if requested != AUTO:
        backend = backend_class(requested)
        if device != AUTO and device not in backend.devices:
            raise UsageError(f"the {requested} backend runs on {', '.join(backend.devices)}, not {device}")
        chosen = default_device(requested) if device == AUTO else device
        return Choice(requested, chosen, _precision(requested, precision), f"{requested} (requested, on {chosen})")
    if model.is_file() and is_engine(model):
        if device == "cpu":
            raise UsageError(f"{model} is a TensorRT engine: it runs on cuda only")
        _require("tensorrt", f"{model} is a TensorRT engine")
        return Choice("tensorrt", "cuda", _precision("tensorrt", precision), "tensorrt (auto: MODEL is an engine)")
    scan = gpu.scan() if device != "cpu" else gpu.GpuScan((), "--device cpu")
    if device == "cuda" and not scan.usable:
        raise BackendUnavailable(f"--device cuda: no usable GPU here ({scan.why_not})")
    if scan.usable:
        picked = _gpu_rule(model, direction, precision, scan)
        if picked is not None:
            return picked
        if device == "cuda":
            raise BackendUnavailable(
                f"--device cuda: no backend can run {model} on the GPU here "
                "(no fresh engine or ONNX export for TensorRT/onnxruntime, and torch sees no CUDA)"
            )
    return _cpu_rule(model, direction, precision, scan)


def _gpu_rule(model: Path, direction: str | None, precision: str | None, scan: gpu.GpuScan) -> Choice | None:
    """tensorrt, then onnxruntime on cuda, then torch on cuda: the first that can run MODEL here."""
    on = scan.first
    if not (model.is_file() and is_onnx(model)) and precision in (None, "fp16"):
        engine = _fresh(lambda: resolve_engine(model, direction), model, direction)
        if engine is not None and availability("tensorrt").ok and _built_for(engine, scan):
            return Choice("tensorrt", "cuda", "fp16", f"tensorrt (auto: found {engine.name}, {on})")
    onnx_file = _fresh(lambda: resolve_onnx(model, precision or "fp32", direction), model, direction)
    if onnx_file is not None and _sees_cuda("onnxruntime"):
        reason = f"onnxruntime on cuda (auto: found {onnx_file.name}, CUDA execution provider, {on})"
        return Choice("onnxruntime", "cuda", _precision("onnxruntime", precision), reason)
    if not (model.is_file() and is_onnx(model)) and _sees_cuda("torch"):
        why = "no fresh TensorRT engine or ONNX export for the GPU" if onnx_file is None else "no onnxruntime-gpu"
        return Choice("torch", "cuda", _precision("torch", precision), f"torch on cuda (auto: {why}, {on})")
    return None


def _cpu_rule(model: Path, direction: str | None, precision: str | None, scan: gpu.GpuScan) -> Choice:
    """onnxruntime when a fresh export is there, else torch; the reason also says why not a GPU."""
    # the short form ("no usable CUDA driver"): gantool doctor has the rest
    cpu = (
        f"on cpu: no backend here can use the {scan.first}" if scan.usable else f"on cpu: {scan.why_not.split(':')[0]}"
    )
    ort_ok = availability("onnxruntime")
    if model.is_file() and is_onnx(model):
        if not ort_ok.ok:
            raise BackendUnavailable(f"{model} needs the onnxruntime backend, which is unavailable: {ort_ok.reason}")
        return Choice(
            "onnxruntime", "cpu", _precision("onnxruntime", precision), "onnxruntime (auto: MODEL is an ONNX file)"
        )
    try:
        onnx_file: Path | None = resolve_onnx(model, precision or "fp32", direction)
    except ArtifactError:
        onnx_file = None
    if onnx_file is None:
        why = "no exported ONNX beside the checkpoint"
    elif _older_than_checkpoint(onnx_file, model, direction):
        why = f"{onnx_file.name} is older than the checkpoint (re-run gantool export)"
    elif not ort_ok.ok:
        why = ort_ok.reason
    else:
        reason = f"onnxruntime (auto: found {onnx_file.name}, onnxruntime is installed; {cpu})"
        return Choice("onnxruntime", "cpu", _precision("onnxruntime", precision), reason)
    _require("torch", f"no backend can run {model}: {why}, and torch")
    return Choice("torch", "cpu", _precision("torch", precision), f"torch (auto: {why}; {cpu})")


def _built_for(engine: Path, scan: gpu.GpuScan) -> bool:
    """Whether the engine's sidecar says it was built for this GPU's architecture (read as JSON: no TensorRT import).

    An engine from another compute capability cannot run here; ``auto`` passes
    over it to the next backend instead of failing (asking for ``--backend
    tensorrt`` still says why and how to rebuild). A TensorRT version mismatch
    is left to the backend, which needs TensorRT imported to see it.
    """
    from gantool.runtime.backends.tensorrt_backend import read_sidecar

    try:
        return read_sidecar(engine).built_on.compute_capability == scan.gpus[0].compute_capability
    except (ArtifactError, OSError):
        return False


def _precision(name: str, precision: str | None) -> str:
    """The asked precision, or the backend's default (its first)."""
    return precision or backend_class(name).precisions[0]


def _require(name: str, what: str) -> None:
    available = availability(name)
    if not available.ok:
        raise BackendUnavailable(f"{what} needs the {name} backend, which is unavailable: {available.reason}")


def _sees_cuda(name: str) -> bool:
    """Whether backend ``name`` can use a GPU here: its engine's own answer (call only when a GPU is there)."""
    if not availability(name).ok:
        return False
    if name.startswith("onnxruntime"):
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    if name.startswith("torch"):
        import torch

        return bool(torch.cuda.is_available())
    return True


def _fresh(resolve: Callable[[], Path], model: Path, direction: str | None) -> Path | None:
    """The artifact ``resolve()`` finds for MODEL, or None when there is none or it is older than the checkpoint."""
    try:
        artifact = resolve()
    except ArtifactError:
        return None
    return None if _older_than_checkpoint(artifact, model, direction) else artifact


def _older_than_checkpoint(artifact: Path, model: Path, direction: str | None) -> bool:
    """A stale export (the checkpoint was rewritten after it) must not silently stand in for the checkpoint."""
    try:
        return artifact.stat().st_mtime < resolve_checkpoint(model, direction).stat().st_mtime
    except (ArtifactError, OSError):
        return False
