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
from dataclasses import dataclass, field
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
    """What runs MODEL: backend ``name`` on ``device`` at ``precision``, and why (shown as ``backend: <reason>``).

    ``backend`` is the backend already loaded when choosing needed it (a measured ``auto``): use it rather
    than loading MODEL a second time; None means load it with ``create``.
    """

    name: str
    device: str
    precision: str
    reason: str
    backend: Backend | None = field(default=None, compare=False, repr=False)
    quality: str = ""  # a lower precision's passing verdict, for the reason (``quality verdict: no measurable loss``)


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
    """``precision`` if it is None (the backend's default), fp32, fp16, bf16 or int8; UsageError otherwise."""
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
    batch_size: int | None = None,
) -> Choice:
    """Resolve ``auto`` (backend and/or device) for MODEL (``direction``'s translator in a CycleGAN run).

    A named backend is returned as asked, once known to exist, and is never
    measured; ``device=auto`` then means cuda if that backend can use a GPU
    here, else its default device.

    ``auto`` takes the ``candidates`` that can run MODEL here under ``device``
    and ``precision``. One candidate is returned as is, with the rule that
    found it as the reason. Among several, the fastest at ``batch_size``
    (None: 64 for a GAN, 1 for a translator) wins, measured on this machine or
    read from the measurement cached for this machine and model (see
    runtime/autoselect.py); the winner comes back loaded (``Choice.backend``),
    so the caller does not load it twice.
    """
    check_device(device)
    check_precision(precision)
    if requested != AUTO:
        backend = backend_class(requested)
        if device != AUTO and device not in backend.devices:
            raise UsageError(f"the {requested} backend runs on {', '.join(backend.devices)}, not {device}")
        chosen = default_device(requested) if device == AUTO else device
        return Choice(requested, chosen, _precision(requested, precision), f"{requested} (requested, on {chosen})")
    scan = gpu.scan() if device != "cpu" else gpu.GpuScan((), "--device cpu")
    found = candidates(model, direction, device, precision, scan)
    if len(found) == 1:
        return found[0]
    from gantool.runtime import autoselect  # measurement and its cache: only when there is a choice to make

    return autoselect.pick(model, direction, found, batch_size, scan)


def candidates(
    model: Path, direction: str | None, device: str, precision: str | None, scan: gpu.GpuScan
) -> list[Choice]:
    """Every backend (on a device, at a precision) that can run MODEL here, each with why it qualifies.

    An ``.engine`` MODEL → tensorrt only; an ``.onnx`` MODEL → onnxruntime only. Otherwise, with a usable
    NVIDIA GPU (asked through cuda-python, never torch) unless ``device=cpu``: tensorrt when a fresh engine
    (not older than the checkpoint) built for this GPU's compute capability lies beside the checkpoint and
    TensorRT is installed; onnxruntime on cuda when a fresh ONNX export exists and onnxruntime's CUDA
    execution provider is there; torch on cuda when torch sees CUDA. Then, unless ``device=cuda``,
    onnxruntime on the CPU when a fresh export exists, and torch on the CPU (fp32: torch's CPU half
    precision is refused). torch-compile and onnxruntime-trt are left to be asked for by name: they compile
    for seconds to minutes when loading, which a measurement at every new model would pay.

    A stale artifact never stands in for a retrained model. ``precision`` None means each backend's default
    (fp16 for tensorrt); a backend that lacks the asked precision is passed over. With ``precision`` None a
    lower precision joins only with a passing quality verdict for this checkpoint (runtime/verdicts.py): the
    INT8 files of ``export --int8`` (onnxruntime on the CPU; the INT8 engine on the GPU). Asked for by name
    (``precision="int8"``), the INT8 file runs whatever its verdict. Raises when none qualifies.
    """
    if model.is_file() and is_engine(model):
        if device == "cpu":
            raise UsageError(f"{model} is a TensorRT engine: it runs on cuda only")
        _require("tensorrt", f"{model} is a TensorRT engine")
        return [Choice("tensorrt", "cuda", _precision("tensorrt", precision), "tensorrt (auto: MODEL is an engine)")]
    if device == "cuda" and not scan.usable:
        raise BackendUnavailable(f"--device cuda: no usable GPU here ({scan.why_not})")
    found = _gpu_candidates(model, direction, precision, scan) if scan.usable and device != "cpu" else []
    if device == "cuda":
        if not found:
            raise BackendUnavailable(
                f"--device cuda: no backend can run {model} on the GPU here "
                "(no fresh engine or ONNX export for TensorRT/onnxruntime, and torch sees no CUDA)"
            )
        return found
    return found + _cpu_candidates(model, direction, precision, cpu_note(scan), required=not found)


def cpu_note(scan: gpu.GpuScan) -> str:
    """Why a choice on the CPU is not on a GPU, short (gantool doctor has the rest): ``on cpu: no usable CUDA driver``."""
    if scan.usable:
        return f"on cpu: no backend here can use the {scan.first}"
    return f"on cpu: {scan.why_not.split(':')[0]}"


def _gpu_candidates(model: Path, direction: str | None, precision: str | None, scan: gpu.GpuScan) -> list[Choice]:
    """tensorrt, onnxruntime on cuda, torch on cuda: those that can run MODEL on this GPU."""
    on, found = scan.first, []
    onnx_model = model.is_file() and is_onnx(model)
    if not onnx_model and precision in (None, "fp16"):
        engine = _fresh(lambda: resolve_engine(model, direction), model, direction)
        if engine is not None and availability("tensorrt").ok and _built_for(engine, scan):
            found.append(Choice("tensorrt", "cuda", "fp16", f"tensorrt (auto: found {engine.name}, {on})"))
    if not onnx_model and precision in (None, "int8"):
        found += _int8_engine(model, direction, scan, verdict_needed=precision is None)
    onnx_file = _fresh(lambda: resolve_onnx(model, precision or "fp32", direction), model, direction)
    if onnx_file is not None and _sees_cuda("onnxruntime"):
        reason = f"onnxruntime on cuda (auto: found {onnx_file.name}, CUDA execution provider, {on})"
        found.append(Choice("onnxruntime", "cuda", _precision("onnxruntime", precision), reason))
    if not onnx_model and _sees_cuda("torch"):
        why = "no fresh TensorRT engine or ONNX export for the GPU" if onnx_file is None else "no onnxruntime-gpu"
        found.append(Choice("torch", "cuda", _precision("torch", precision), f"torch on cuda (auto: {why}, {on})"))
    return found


def _cpu_candidates(
    model: Path, direction: str | None, precision: str | None, cpu: str, required: bool
) -> list[Choice]:
    """onnxruntime when a fresh export is there, and torch; raises when ``required`` and neither can run MODEL."""
    ort_ok = availability("onnxruntime")
    if model.is_file() and is_onnx(model):
        if ort_ok.ok:
            reason = "onnxruntime (auto: MODEL is an ONNX file)"
            return [Choice("onnxruntime", "cpu", _precision("onnxruntime", precision), reason)]
        if required:
            raise BackendUnavailable(f"{model} needs the onnxruntime backend, which is unavailable: {ort_ok.reason}")
        return []
    found = []
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
        found.append(Choice("onnxruntime", "cpu", _precision("onnxruntime", precision), reason))
        why = ""
    if precision is None and ort_ok.ok:
        found += _verdict_candidates(model, direction, cpu)
    if precision in (None, "fp32") and availability("torch").ok:
        found.append(Choice("torch", "cpu", "fp32", f"torch (auto: {why}; {cpu})" if why else f"torch ({cpu})"))
    if required and not found:
        if precision in (None, "fp32"):
            _require("torch", f"no backend can run {model}: {why}, and torch")  # raises: torch is missing
        if precision == "int8":
            raise UsageError(f"int8 needs the INT8 ONNX file of 'gantool export {model} --int8' ({why})")
        raise UsageError(f"{precision} on the CPU needs an {precision} ONNX export ({why}): torch runs it on cuda only")
    return found


def _verdict_candidates(model: Path, direction: str | None, cpu: str) -> list[Choice]:
    """Lower-precision ONNX files ``auto`` may time: fresh, and carrying a passing verdict for this checkpoint.

    Only the INT8 file of ``export --int8`` carries one today; an FP16 file has none, so auto leaves it out.
    """
    from gantool.runtime.verdicts import passing_verdict

    try:
        checkpoint: Path | None = resolve_checkpoint(model, direction)
    except ArtifactError:
        checkpoint = None
    artifact = _fresh(lambda: resolve_onnx(model, "int8", direction), model, direction)
    verdict = passing_verdict(artifact, checkpoint) if artifact is not None else None
    if artifact is None or verdict is None:
        return []
    reason = f"onnxruntime int8 (auto: found {artifact.name}, {verdict.describe()}; {cpu})"
    return [Choice("onnxruntime", "cpu", "int8", reason, quality=verdict.describe())]


def _int8_engine(model: Path, direction: str | None, scan: gpu.GpuScan, verdict_needed: bool) -> list[Choice]:
    """The INT8 engine of ``export --trt --int8``, when fresh, built for this GPU and (for auto) passing its verdict."""
    from gantool.runtime.backends.tensorrt_backend import read_sidecar
    from gantool.runtime.verdicts import passing

    engine = _fresh(lambda: resolve_engine(model, direction, "int8"), model, direction)
    if engine is None or not availability("tensorrt").ok or not _built_for(engine, scan):
        return []
    try:
        verdict = passing(read_sidecar(engine).extra.get("quality"), resolve_checkpoint(model, direction))
    except (ArtifactError, OSError):
        verdict = None
    if verdict is None and verdict_needed:
        return []
    quality = verdict.describe() if verdict is not None else ""
    reason = f"tensorrt int8 (auto: found {engine.name}" + (f", {quality}" if quality else "") + f", {scan.first})"
    return [Choice("tensorrt", "cuda", "int8", reason, quality=quality)]


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
