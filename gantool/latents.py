"""Deterministic latents: sample i depends on (seed, i) and nothing else.

Each sample draws from its own counter-based Philox stream keyed by the seed
and the sample index, so the same seed gives the same images whatever the batch
size, the backend, or where a resumed run starts. Pure numpy: the onnxruntime
and TensorRT paths use it without importing torch.
"""

from __future__ import annotations

import numpy as np

MAX_SEED = 2**63 - 1


def latent_batch(seed: int, start: int, count: int, latent_dim: int) -> np.ndarray:
    """Latents for samples ``start .. start+count-1``: float32, shape (count, latent_dim)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in [0, {MAX_SEED}]")
    out = np.empty((count, latent_dim), dtype=np.float32)
    for row, index in enumerate(range(start, start + count)):
        # Philox's 128-bit key holds (seed, index) exactly: no hashing, no collisions.
        rng = np.random.Generator(np.random.Philox(key=np.array([seed, index], dtype=np.uint64)))
        out[row] = rng.standard_normal(latent_dim, dtype=np.float32)
    return out
