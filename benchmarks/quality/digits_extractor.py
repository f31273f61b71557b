"""The ``digits`` extractor: gantool's own small CNN, bundled as safetensors, for 28×28 digits and digits-m.

FID's usual Inception-v3 was trained on ImageNet photos and reads a 28×28
digit upscaled to 299×299 poorly; a network that knows digits separates good
from bad digit samples far better, and one this small ships inside the wheel,
so ``gantool eval`` works offline. The weights are loaded from safetensors
(raw tensors, no pickle: nothing in the file can run), their sha256 names them
in every report, and the file's metadata carries the held-out test accuracy
its training script measured (``train_digits_extractor``), so a report says
how well its feature network actually reads digits.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from gantool.benchmarks.quality.digits_cnn import CLASSES, FEATURES, DigitsCNN, prepare
from gantool.benchmarks.quality.extractors import DEFAULT_BATCH, Classifier, Extractor
from gantool.errors import ArtifactError, UsageError
from gantool.files import sha256_file

WEIGHTS_NAME = "digits_cnn.safetensors"
FORMAT, VERSION = "gantool-digits-extractor", "1"  # what train_digits_extractor writes
ACCURACY_KEYS = ("plain", "digits_m_a", "digits_m_b")
INPUT = "28×28, grey repeated to RGB, bilinear antialiased resize, /255"


class DigitsExtractor(Extractor, Classifier):
    """Features (128 post-ReLU activations) and class probabilities (10) of uint8 digit images, in batches."""

    name = "digits"
    dim = FEATURES
    classes = CLASSES

    def __init__(self, device: str = "cpu", batch_size: int = DEFAULT_BATCH, weights: Path | None = None) -> None:
        if batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
        self._device, self.batch_size = device, batch_size
        if weights is None:
            with as_file(files("gantool.benchmarks.quality") / WEIGHTS_NAME) as bundled:
                self._load(Path(bundled))
        else:
            self._load(weights)

    def _load(self, path: Path) -> None:
        """Read, check and load ``path``: its metadata first, then tensors that must be exactly the network's."""
        if not path.is_file():
            raise ArtifactError(f"digits extractor weights {path} are missing (reinstall gantool, or retrain them)")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
                raise ArtifactError(
                    f"{path} is not gantool digits extractor weights version {VERSION} "
                    f"(format {metadata.get('format')!r}, version {metadata.get('version')!r})"
                )
            accuracy = {key: float(metadata[f"test_accuracy_{key}"]) for key in ACCURACY_KEYS}
            state = load_file(str(path))
            network = DigitsCNN()
            network.load_state_dict(state, strict=True)
        except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArtifactError(f"{path}: corrupt digits extractor weights ({detail})") from None
        self._sha256 = sha256_file(path)
        self._metadata = metadata
        self._accuracy = accuracy
        self.weights_path = path
        self.network = network.to(self._device).eval()

    @property
    def sha256(self) -> str:
        """The sha256 of the weights file: reports compare only when their extractors' hashes match."""
        return self._sha256

    @property
    def device(self) -> str:
        """Where the network runs: ``cpu`` or ``cuda``."""
        return self._device

    def _run(
        self, pixels: np.ndarray, head: Callable[[torch.Tensor], torch.Tensor], width: int,
        advance: Callable[[int], None] | None,
    ) -> np.ndarray:  # fmt: skip
        """``head`` of each batch of ``pixels`` as float64 N×width; each batch is prepared only when it runs."""
        prepare(pixels[:0])  # refuse a bad shape or dtype before any work, even for no images
        out = np.empty((len(pixels), width), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(pixels), self.batch_size):
                chunk = pixels[start : start + self.batch_size]
                result = head(prepare(chunk).to(self._device))
                out[start : start + len(chunk)] = result.double().cpu().numpy()
                if advance is not None:
                    advance(len(chunk))
        return out

    def features(self, pixels: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """The 128 features of each of ``pixels`` (uint8 N×H×W×C, C 1 or 3, any size): float64 N×128."""
        return self._run(pixels, self.network.features, self.dim, advance)

    def probabilities(self, pixels: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Softmax class probabilities of ``pixels``: float64 N×10, column k the digit k."""
        return self._run(pixels, lambda x: torch.softmax(self.network(x).double(), dim=1), self.classes, advance)

    def predict(self, pixels: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """The digit (0..9, int64) each of ``pixels`` most likely shows."""
        labels: np.ndarray = self.probabilities(pixels, advance).argmax(axis=1).astype(np.int64)
        return labels

    def accuracy_on_test(self) -> dict[str, float]:
        """Held-out test accuracy the training script measured: plain digits, digits-m test A and test B."""
        return dict(self._accuracy)

    def describe(self) -> dict[str, Any]:
        """The base description plus the test accuracies and the preprocessing, so a report says what it used."""
        return {
            **super().describe(),
            "classes": self.classes,
            "input": INPUT,
            "test_accuracy": self.accuracy_on_test(),
            "train_command": self._metadata.get("train_command", ""),
        }
