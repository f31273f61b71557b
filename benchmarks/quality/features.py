"""Features of image sets, with a progress bar, and real data's features cached by content hash.

Real data is the same from one ``gantool eval`` to the next, and its features
cost most of an evaluation's time on a CPU (the Inception runs at a few images
a second there), so they are kept in the cache under a key made of the
extractor's name, its weights hash and the pixels' own hash: a different
image, order or network is a different key, never a stale hit. An
extractor's preprocessing is part of gantool's code, not of the key: after
an upgrade that changes it, clear the cache (or use --no-cache). Generated
samples change with every model and are never cached.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np

from gantool.benchmarks.quality.extractors import Classifier, Extractor
from gantool.runtime.progress import Progress

CACHE_FOLDER = "features"


def pixels_hash(pixels: np.ndarray) -> str:
    """sha256 of an image set's shape, dtype and bytes: its identity for the cache."""
    digest = hashlib.sha256(f"{pixels.dtype}{pixels.shape}".encode())
    digest.update(np.ascontiguousarray(pixels).data)
    return digest.hexdigest()


@dataclass
class FeatureReader:
    """One extractor, read through by every set of an evaluation; counts what came from the cache."""

    extractor: Extractor
    use_cache: bool = True
    cache_hits: list[str] = field(default_factory=list)

    def features(self, pixels: np.ndarray, label: str, cache: bool = False) -> np.ndarray:
        """float64 N×dim features of uint8 ``pixels``; ``cache`` for real data (kept by content hash)."""
        key = f"{self.extractor.name}-{self.extractor.sha256[:16]}-{pixels_hash(pixels)}"
        if cache and self.use_cache:
            found = _read_cache(key, len(pixels), self.extractor.dim)
            if found is not None:
                self.cache_hits.append(label)
                return found
        with Progress(len(pixels), f"features: {label}") as bar:
            result = self.extractor.features(pixels, bar.advance)
        if cache and self.use_cache:
            _write_cache(key, result)
        return result

    def probabilities(self, pixels: np.ndarray, label: str) -> np.ndarray | None:
        """Class probabilities when the extractor is a classifier (digits), else None."""
        if not isinstance(self.extractor, Classifier):
            return None
        with Progress(len(pixels), f"classifying: {label}") as bar:
            return self.extractor.probabilities(pixels, bar.advance)


def _read_cache(key: str, count: int, dim: int) -> np.ndarray | None:
    """The cached features under ``key`` if present and of the right shape; anything unreadable is a miss."""
    from gantool.cache import cache_dir

    try:
        path = cache_dir(CACHE_FOLDER) / f"{key}.npy"
        if not path.is_file():
            return None
        found = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if found.shape != (count, dim) or found.dtype != np.float64 or not np.isfinite(found).all():
        return None
    return found


def _write_cache(key: str, features: np.ndarray) -> None:
    """Keep ``features`` under ``key``, atomically; a cache that cannot be written is skipped, never an error."""
    from gantool.cache import cache_dir
    from gantool.files import atomic_write_bytes

    buffer = io.BytesIO()
    np.save(buffer, features, allow_pickle=False)
    try:
        atomic_write_bytes(cache_dir(CACHE_FOLDER) / f"{key}.npy", buffer.getvalue())
    except OSError:
        pass
