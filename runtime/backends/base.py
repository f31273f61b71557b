"""The one interface every inference backend implements: load an artifact, run a batch, report its device.

A backend turns a float32 input batch (latents N×Z for a GAN, images
N×C×H×W for a translator) into float32 images (N×C×H×W, in the spec's value
range); everything around that — latents, decoding to pixels,
writing files, timing — lives outside the backend and is shared. Adding a
backend is one file with a subclass of ``Backend`` plus one line in
``gantool.runtime.registry``.

Backend modules keep their heavy imports (torch, onnxruntime, tensorrt)
inside ``load`` so that the registry can list them and ask whether they are
installed without paying for, or failing on, those imports.
"""

from __future__ import annotations

import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from gantool.errors import BackendUnavailable, GantoolError, UsageError
from gantool.spec import MIN_SIDE, SIZE_MULTIPLE, ModelSpec, fits_translator

PRECISIONS = ("fp32", "fp16", "bf16", "int8")  # int8: the QDQ ONNX file of export --int8 (and its engine)


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why and how to fix it."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Probe:
    """What ``gantool doctor`` shows for one backend: installed or not and why, its version, what it sees.

    ``devices`` are human-readable, one per device the backend can use here,
    e.g. ``cpu`` or ``cuda:0 NVIDIA H100 80GB HBM3 (sm 9.0, driver CUDA 12.9)``.
    ``note`` says why a backend that is installed still cannot run (no driver,
    CPU-only build), or any caveat.
    """

    installed: bool
    version: str = ""
    devices: tuple[str, ...] = ()
    note: str = ""


class Backend(ABC):
    """Runs one generator artifact on one device.

    Life cycle: ``backend = SomeBackend(device)``, ``backend.load(model, direction)``
    (MODEL as the user gave it: run dir, checkpoint or exported file; ``direction``
    picks a CycleGAN run's translator), then ``backend.run(batch)`` as often as
    needed: latents for a GAN, images for a translator.
    """

    name: ClassVar[str]
    """Registry name, as typed after ``--backend``."""
    requires: ClassVar[tuple[str, ...]] = ()
    """Importable modules the backend needs; checked with find_spec, without importing them."""
    install_hint: ClassVar[str] = ""
    """What to run when a required module is missing."""
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    """Devices this backend can run on; the first is the default."""
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    """Compute precisions this backend offers, the default first (inputs and outputs are float32 regardless)."""

    def __init__(self, device: str | None = None, precision: str | None = None) -> None:
        device = device or self.devices[0]
        precision = precision or self.precisions[0]
        if device not in self.devices:
            raise BackendUnavailable(f"the {self.name} backend runs on {', '.join(self.devices)}, not {device!r}")
        if precision not in self.precisions:
            raise UsageError(f"the {self.name} backend runs {', '.join(self.precisions)}, not {precision!r}")
        self.device = device
        self.precision = precision
        self._spec: ModelSpec | None = None
        self.artifact: Path | None = None

    @classmethod
    def availability(cls) -> Availability:
        """Installed or not, decided without importing the (slow, possibly broken) modules."""
        missing = [module for module in cls.requires if importlib.util.find_spec(module) is None]
        if missing:
            return Availability(False, f"{', '.join(missing)} is not installed ({cls.install_hint})")
        return Availability(True)

    @classmethod
    def probe(cls) -> Probe:
        """For ``gantool doctor``: may import the backend's engine (slow), never raises.

        The default only says whether the modules are installed; backends override
        it to add their version and the devices they see.
        """
        available = cls.availability()
        return Probe(installed=available.ok, note=available.reason)

    @classmethod
    @abstractmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        """The artifact this backend loads for MODEL (a run dir may hold several); ArtifactError if none.

        ``direction`` (a2b | b2a) picks the translator in a CycleGAN run dir; None means a2b there.
        ``precision`` picks among a run dir's artifacts where it decides the file (onnxruntime: the
        .fp16.onnx); backends whose precision is a runtime setting ignore it.
        """

    @classmethod
    def peek_spec(cls, artifact: Path) -> ModelSpec | None:
        """The artifact's spec if it can be read without loading the engine (None: only ``load`` tells).

        Lets callers refuse the wrong kind of model before paying for a heavy import.
        """
        return None

    @abstractmethod
    def _load(self, artifact: Path) -> ModelSpec:
        """Load ``artifact`` (already resolved) and return the spec it carries."""

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 inputs (``input_shape``) → float32 images (N×C×H×W) in ``spec.value_range``."""

    def load(self, model: Path, direction: str | None = None) -> None:
        """Resolve MODEL (and ``direction``, for a CycleGAN run) to this backend's artifact and load it."""
        available = self.availability()
        if not available.ok:
            raise BackendUnavailable(f"the {self.name} backend is unavailable: {available.reason}")
        artifact = self.resolve(model, direction, self.precision)
        spec = self._load(artifact)
        check_direction(spec, artifact, direction)
        self._spec = spec
        self.artifact = artifact

    @property
    def spec(self) -> ModelSpec:
        """The spec of the loaded model."""
        if self._spec is None:
            raise GantoolError(f"the {self.name} backend has no model loaded")
        return self._spec

    def input_shape(self, batch_size: int) -> tuple[int, ...]:
        """Shape of one input batch: N×Z latents for a GAN, N×C×H×W images (native size) for a translator."""
        spec = self.spec
        if spec.latent_dim is not None:
            return (batch_size, spec.latent_dim)
        return (batch_size, *spec.image_shape)

    def check_input(self, batch: np.ndarray) -> None:
        """Refuse a batch the network cannot take, in one line, before the engine fails obscurely.

        A GAN takes N×Z latents. A translator takes N×C×H×W images of any H, W
        that are multiples of SIZE_MULTIPLE and at least MIN_SIDE: smaller ones
        would not survive its two stride-2 downsamplings, and other sizes would
        come back a different size than they went in.
        """
        spec = self.spec
        if spec.latent_dim is not None:
            if batch.ndim != 2 or batch.shape[1] != spec.latent_dim:
                raise UsageError(f"expected latents N×{spec.latent_dim}, got an array of shape {batch.shape}")
            return
        if batch.ndim != 4 or batch.shape[1] != spec.channels:
            raise UsageError(f"expected images N×{spec.channels}×H×W, got an array of shape {batch.shape}")
        height, width = batch.shape[2:]
        if not fits_translator(height, width):
            raise UsageError(
                f"a translator takes sides that are multiples of {SIZE_MULTIPLE} and at least {MIN_SIDE}, got {height}×{width}"
            )

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None] | None:
        """A zero-argument callable that runs one forward pass on ``batch`` already on the device, and waits for it.

        What ``gantool bench`` times as compute-only: the batch is placed on the
        device here, once, and every call runs the network on it and synchronises
        the device, with no host↔device copies and no output conversion. None when
        the backend has no separate compute path: on the CPU the inputs and outputs
        already live where the network runs, so compute-only *is* end to end.
        """
        return None

    def warmup(self, batch_size: int, min_seconds: float = 0.0, min_runs: int = 2) -> int:
        """Run a few batches so allocation and lazy initialisation stay out of timings; returns the run count."""
        batch = np.zeros(self.input_shape(batch_size), dtype=np.float32)
        runs, start = 0, time.perf_counter()
        while runs < min_runs or time.perf_counter() - start < min_seconds:
            self.run(batch)
            runs += 1
        return runs

    def describe(self) -> str:
        """Short human label, e.g. ``onnxruntime (cpu, fp32)``."""
        return f"{self.name} ({self.device}, {self.precision})"


def check_direction(spec: ModelSpec, artifact: Path, direction: str | None) -> None:
    """A ``direction`` that contradicts the loaded file is an error, never silently ignored.

    In a run dir the direction picks the file; a checkpoint or ONNX file *is* one
    direction, so asking for the other one is refused rather than run backwards.
    """
    if direction is None or spec.direction == direction:
        return
    if spec.direction is None:
        raise UsageError(f"{artifact} is a GAN generator: --direction applies to CycleGAN translators only")
    raise UsageError(
        f"{artifact} is the {spec.direction} translator, not {direction}: pass the run dir, or the other file"
    )
