"""The sampling API behind ``gantool generate`` and ``gantool.load``.

``Generator`` pairs a loaded backend with the two pieces every backend shares:
deterministic latents (sample i depends only on (seed, i), see
gantool.latents) and decoding network output to uint8 pixels. Because the
latents are fixed per index, the same seed gives the same images whatever the
batch size or backend (up to the backend's float rounding)::

    gen = Generator.open(Path("runs/digits"))
    images = gen.sample(16, seed=0)   # uint8 16×H×W×C
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from gantool.errors import UsageError
from gantool.images import to_uint8
from gantool.latents import MAX_SEED, latent_batch
from gantool.runtime.loaded import LoadedModel
from gantool.spec import ModelSpec


class Generator(LoadedModel):
    """A GAN generator ready to sample on one backend."""

    @classmethod
    def check_kind(cls, spec: ModelSpec, artifact: Path | None) -> None:
        if spec.kind != "gan" or spec.latent_dim is None:
            raise UsageError(
                f"{artifact} is a {spec.kind} translator ({spec.direction or 'image to image'}): "
                "it maps images to images, it cannot sample from noise: use gantool translate"
            )

    def iter_batches(self, n: int, seed: int = 0, batch_size: int = 64) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start_index, uint8 batch B×H×W×C)`` covering samples 0..n-1 in order.

        Streaming lets a caller write batch k while batch k+1 is computed, and
        keeps memory bounded by the batch size rather than by n.
        """
        _check_counts(n, seed, batch_size)
        spec = self.spec
        assert spec.latent_dim is not None
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            latents = latent_batch(seed, start, count, spec.latent_dim)  # count×Z
            yield start, to_uint8(self._backend.run(latents), spec.value_range)  # count×H×W×C

    def sample(self, n: int, seed: int = 0, batch_size: int = 64) -> np.ndarray:
        """``n`` images as one uint8 array N×H×W×C."""
        _check_counts(n, seed, batch_size)
        spec = self.spec
        out = np.empty((n, spec.height, spec.width, spec.channels), dtype=np.uint8)
        for start, batch in self.iter_batches(n, seed, batch_size):
            out[start : start + len(batch)] = batch
        return out


def _check_counts(n: int, seed: int, batch_size: int) -> None:
    if n < 0:
        raise UsageError(f"n must be ≥ 0, got {n}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be ≥ 1, got {batch_size}")
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed must be in [0, {MAX_SEED}], got {seed}")
