"""TensorRT backend: a FP16 engine built by ``gantool export --trt``, run through cuda-python. Never imports torch.

An engine plan is opaque, so everything gantool needs to know about it comes
from its JSON sidecar (``<engine>.json``): the spec, the optimization profile
and the machine it was built on. Loading checks, in this order, before
TensorRT sees a byte:

1. the sidecar exists and parses strictly (gantool.engines.EngineInfo);
2. the plan is the one the sidecar describes (sha256), so a rebuilt or
   swapped engine is not run under another engine's profile;
3. this machine can run it (same TensorRT release and compute capability);
   a mismatch is one line saying which, and "rebuild it here". A different
   GPU model of the same architecture, or an older driver, is a warning.

Only then is the plan deserialised (gantool.trt_engine.EngineRunner).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

from gantool import cuda
from gantool.artifacts import resolve_engine
from gantool.engines import MAX_SIDECAR_BYTES, REBUILD_HINT, EngineInfo, compatibility, sidecar_path
from gantool.errors import ArtifactError, BackendUnavailable, GantoolError
from gantool.runtime.backends.base import Availability, Backend, Probe
from gantool.spec import ModelSpec
from gantool.trt_engine import INSTALL_HINT, EngineRunner, import_tensorrt, machine_facts


class TensorrtBackend(Backend):
    """A ``.fp16.engine`` on the first CUDA GPU: FP16 inside, float32 in and out."""

    name: ClassVar[str] = "tensorrt"
    requires: ClassVar[tuple[str, ...]] = ("tensorrt", "cuda.bindings")
    install_hint: ClassVar[str] = INSTALL_HINT
    devices: ClassVar[tuple[str, ...]] = ("cuda",)
    precisions: ClassVar[tuple[str, ...]] = ("fp16", "int8")  # which engine a run dir gives (--int8 builds int8)

    def __init__(self, device: str | None = None, precision: str | None = None) -> None:
        super().__init__(device, precision)
        self._runner: EngineRunner | None = None

    @classmethod
    def availability(cls) -> Availability:
        """Installed or not, without importing TensorRT (seconds, and it may fail to load its libraries).

        The TensorRT stubs leave a namespace package named ``tensorrt``: find_spec
        finds it, but with no ``origin`` (no ``__init__.py``), which real TensorRT has.
        """
        spec = importlib.util.find_spec("tensorrt")
        if spec is None or spec.origin is None:
            return Availability(False, f"TensorRT is not installed: {INSTALL_HINT}")
        if importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None:
            return Availability(False, f"cuda-python is not installed: {cuda.INSTALL_HINT}")
        return Availability(True)

    @classmethod
    def probe(cls) -> Probe:
        """For ``gantool doctor``: TensorRT's version and the GPUs cuda-python sees, or why it cannot run."""
        available = cls.availability()
        if not available.ok:
            return Probe(installed=False, note=available.reason)
        try:
            trt = import_tensorrt()
        except BackendUnavailable as exc:
            return Probe(installed=False, note=str(exc))
        version = str(trt.__version__)
        try:
            devices = tuple(gpu.describe() for gpu in cuda.gpus())
            driver = cuda.driver_cuda_version()
        except GantoolError as exc:
            return Probe(installed=True, version=version, note=str(exc))
        note = f"driver supports CUDA {driver}" if devices else "no CUDA GPU found"
        return Probe(installed=True, version=version, devices=devices, note=note)

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp16") -> Path:
        return resolve_engine(model, direction, precision)

    @classmethod
    def peek_spec(cls, artifact: Path) -> ModelSpec | None:
        """The sidecar's spec: JSON only, no TensorRT import."""
        try:
            return read_sidecar(artifact).spec
        except (OSError, ArtifactError):
            return None  # load() reports a missing or bad sidecar in its own words

    def _load(self, artifact: Path) -> ModelSpec:
        info = read_sidecar(artifact)
        plan = artifact.read_bytes()
        if sha256_bytes(plan) != info.engine_sha256:
            raise ArtifactError(
                f"{artifact} is not the engine its sidecar describes (sha256 differs): rebuild both with "
                "gantool export --trt"
            )
        trt = import_tensorrt()
        verdict = compatibility(info.built_on, machine_facts(trt))
        if verdict.errors:
            raise BackendUnavailable(f"{artifact}: {'; '.join(verdict.errors)}: {REBUILD_HINT}")
        for warning in verdict.warnings:
            print(f"warning: {artifact.name}: {warning}", file=sys.stderr)
        self._runner = EngineRunner(plan, info.profile, where=str(artifact))
        self.precision = info.precision  # an engine given by path runs at the precision it was built at
        return info.spec

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self._runner is not None, "load() first"
        self.check_input(batch)
        return self._runner.run(batch)

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None] | None:
        """The engine on the batch staged on the GPU once: execute_async_v3 (as a graph) and a stream sync per call."""
        assert self._runner is not None, "load() first"
        self.check_input(batch)
        return self._runner.compute_fn(batch)


def read_sidecar(engine: Path) -> EngineInfo:
    """The engine's sidecar, parsed strictly; ArtifactError if it is missing or malformed."""
    path = sidecar_path(engine)
    if not path.is_file():
        raise ArtifactError(
            f"{engine} has no sidecar {path.name}: gantool export --trt writes the engine together with it"
        )
    if path.stat().st_size > MAX_SIDECAR_BYTES:  # refuse before reading a huge file into memory
        raise ArtifactError(f"{path} is larger than {MAX_SIDECAR_BYTES} bytes: not a gantool engine sidecar")
    return EngineInfo.from_json(path.read_bytes(), where=path)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of the plan bytes that will be deserialised: the bytes checked are the bytes run."""
    return hashlib.sha256(data).hexdigest()
