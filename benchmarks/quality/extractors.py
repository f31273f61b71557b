"""Feature extractors: uint8 images in, one feature vector per image out; each named by its weights' sha256.

Every report names the extractor and the hash of its weights, because an FID
is only comparable with another FID computed by the same network on the same
preprocessing. ``open_extractor`` picks one by name: ``digits`` (gantool's
own small CNN, bundled, the default for 28×28 grey data) or ``inception``
(the standard FID Inception-v3, from a local file or the ``inception`` extra).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gantool.errors import UsageError

if TYPE_CHECKING:
    from gantool.spec import ModelSpec

EXTRACTORS = ("digits", "inception")
DEFAULT_BATCH = 64


class Extractor(ABC):
    """A fixed network that maps uint8 N×H×W×C images (C 1 or 3, any size) to float64 N×dim features."""

    name: str
    dim: int

    @property
    @abstractmethod
    def sha256(self) -> str:
        """The sha256 of the weights: two reports compare only when their extractors' hashes match."""

    @property
    @abstractmethod
    def device(self) -> str:
        """Where the network runs: ``cpu`` or ``cuda``."""

    @abstractmethod
    def features(self, pixels: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Features of ``pixels`` (uint8 N×H×W×C), computed in batches; ``advance(n)`` after each batch."""

    def describe(self) -> dict[str, Any]:
        """What a report says about the extractor: name, feature size, weights hash, device, preprocessing."""
        return {"name": self.name, "dim": self.dim, "sha256": self.sha256, "device": self.device}


class Classifier(ABC):
    """An extractor that also reads the class of each image (the digits CNN): class probabilities N×classes."""

    classes: int

    @abstractmethod
    def probabilities(self, pixels: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Softmax class probabilities of ``pixels`` (uint8 N×H×W×C), float64 N×classes."""


def pick_device(device: str) -> str:
    """``auto`` → cuda when torch sees a GPU, else cpu; ``cpu``/``cuda`` as given (cuda refused without a GPU)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA GPU here (use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


def default_extractor(spec: ModelSpec) -> str:
    """The extractor a model's images get when none is named: digits for digit data, inception for the rest.

    Digit data is 28×28 grey (the bundled digits, MNIST) or the bundled digits-m pair, at any size: the
    digits CNN reads both, and Inception's ImageNet features say little about 28-pixel digits.
    """
    if spec.provenance.get("dataset") == "digits-m" or (spec.channels, spec.height, spec.width) == (1, 28, 28):
        return "digits"
    return "inception"


def open_extractor(
    name: str, *, device: str = "auto", inception_weights: Path | None = None, batch_size: int = DEFAULT_BATCH
) -> Extractor:
    """The extractor called ``name`` on ``device``; inception from ``inception_weights`` or the installed extra."""
    if name == "digits":
        from gantool.benchmarks.quality.digits_extractor import DigitsExtractor

        return DigitsExtractor(device=pick_device(device), batch_size=batch_size)
    if name == "inception":
        from gantool.benchmarks.quality.inception import InceptionExtractor

        return InceptionExtractor.open(inception_weights, device=pick_device(device), batch_size=batch_size)
    raise UsageError(f"--extractor must be one of {', '.join(EXTRACTORS)}, got {name!r}")
