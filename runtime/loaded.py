"""What ``Generator`` and ``Translator`` share: a loaded backend, why it was picked, and a kind check.

Opening a model is the same for both: pick the backend (``auto`` or the one
named), refuse the wrong kind of model from the artifact's spec before an
engine is loaded when the backend can read the spec cheaply, then load it.
Each subclass says which kind it serves in ``check_kind``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from gantool.errors import GantoolError
from gantool.files import sha256_file
from gantool.runtime import registry
from gantool.runtime.backends.base import Backend
from gantool.spec import ModelSpec

LoadedT = TypeVar("LoadedT", bound="LoadedModel")


class LoadedModel:
    """A model loaded on one backend; subclasses add what they do with it (sample, translate)."""

    def __init__(self, backend: Backend, reason: str = "") -> None:
        self.check_kind(backend.spec, backend.artifact)
        self._backend = backend
        self.reason = reason or backend.name
        """Why this backend was picked, e.g. ``onnxruntime (auto: MODEL is an ONNX file)``."""

    @classmethod
    def check_kind(cls, spec: ModelSpec, artifact: Path | None) -> None:
        """Raise UsageError naming the right command when ``spec`` is not the kind this class serves."""
        raise NotImplementedError

    @classmethod
    def open(  # noqa: PYI019 - typing.Self needs Python 3.11; we support 3.10
        cls: type[LoadedT],
        path: Path,
        backend: str = registry.AUTO,
        *,
        device: str = registry.AUTO,
        precision: str | None = None,
        direction: str | None = None,
        batch_size: int | None = None,
    ) -> LoadedT:
        """Load MODEL (run dir, checkpoint, .onnx or .engine) on ``backend`` (``auto`` picks, see registry.choose).

        ``device`` is auto, cpu or cuda (auto: the chosen backend's GPU when it can use one here, else the CPU);
        ``precision`` fp32, fp16, bf16 or int8 (None: the backend's default). In a CycleGAN run dir ``direction``
        (a2b | b2a, default a2b) picks the generator. ``batch_size`` is the batch the caller will run:
        ``auto`` picks the fastest backend at that size (None: a representative one).
        """
        path = Path(path)
        names = registry.names() if backend == registry.AUTO else [backend]
        cls._check_header(path, names, direction, precision)  # the wrong kind is refused before auto measures
        choice = registry.choose(path, backend, direction, device, precision, batch_size)
        runner = choice.backend or registry.create(choice.name, path, choice.device, direction, choice.precision)
        return cls(runner, choice.reason)

    @classmethod
    def _check_header(cls, path: Path, names: list[str], direction: str | None, precision: str | None) -> None:
        """``check_kind`` on the first spec an installed backend can read from its artifact's header, if any."""
        for name in names:
            backend_class = registry.backend_class(name)
            if not backend_class.availability().ok:
                continue
            try:
                artifact = backend_class.resolve(path, direction, precision or backend_class.precisions[0])
            except GantoolError:
                continue  # loading says why, in the chosen backend's words
            spec = backend_class.peek_spec(artifact)
            if spec is not None:
                cls.check_kind(spec, artifact)
                return

    @property
    def spec(self) -> ModelSpec:
        return self._backend.spec

    @property
    def backend(self) -> str:
        """Name of the backend in use (``torch``, ``onnxruntime``, ...)."""
        return self._backend.name

    @property
    def device(self) -> str:
        """Where it runs: ``cpu`` or ``cuda``."""
        return self._backend.device

    @property
    def precision(self) -> str:
        """``fp32`` or ``fp16``: the precision the backend computes in (inputs and outputs are float32 either way)."""
        return self._backend.precision

    @property
    def runner(self) -> Backend:
        """The loaded backend itself, for timing or custom batches."""
        return self._backend

    def identity(self, model: Path) -> dict[str, str | None]:
        """What outputs of this model are a function of (file, content hash, precision): a resume manifest's core."""
        artifact = self._backend.artifact
        return {
            "model": str(artifact.resolve()) if artifact else str(model),
            "sha256": sha256_file(artifact) if artifact else None,
            "precision": self.precision,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._backend.artifact}, backend={self.backend!r}, device={self.device!r}, "
            f"precision={self.precision!r})"
        )
