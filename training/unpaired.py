"""Unpaired training data for CycleGAN: two domains held whole in memory, batches drawn and augmented on the fly.

Images are decoded once, as uint8 at the load size (a quarter of the float32
memory); each batch is cropped, flipped and scaled to [-1, 1] as it is drawn.
Every random choice of an epoch (the order of both domains, the crops, the
flips) comes from (seed, epoch) alone, so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gantool.data import UNPAIRED_FOLDERS, load_digits_m, load_unpaired_folder
from gantool.errors import UsageError
from gantool.training.config import DIGITS_M
from gantool.training.datasets import skipped_warning
from gantool.training.loop import SHUFFLE_STREAM, sub_seed

if TYPE_CHECKING:
    import torch

PANEL_IMAGES = 8  # fixed images per domain shown in each epoch's panel


def load_size_for(size: int) -> int:
    """The reference's resize-then-crop margin: 286 for a 256 crop, scaled (size·286/256, rounded)."""
    return round(size * 286 / 256)


def load_unpaired(dataset: str, size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, str], str, bool]:
    """Both domains as uint8 N×L×L×3, their names, a short dataset name, and whether to augment.

    ``digits-m`` comes at ``size`` and is not augmented: its digits are
    centred, and a mirrored 2 is no longer a 2. A folder comes at the load
    size and is randomly cropped and flipped, as the reference does.
    """
    if dataset == DIGITS_M:
        a, b = load_digits_m(size)
        return a, b, ("digits", DIGITS_M), DIGITS_M, False
    folder = Path(dataset)
    if folder.exists() and not folder.is_dir():
        raise UsageError(
            f"dataset {folder} is a file: expected digits-m or a folder with {' and '.join(UNPAIRED_FOLDERS)}"
        )
    a, b, skipped = load_unpaired_folder(folder, load_size_for(size))
    if skipped:
        print(skipped_warning(str(folder), skipped), file=sys.stderr)
    name = folder.resolve().name
    return a, b, (f"{name[:62]}-A", f"{name[:62]}-B"), name, True


class UnpairedBatches:
    """Domains A and B as uint8 N×L×L×3 tensors on the device; yields float (A, B) batches of N×3×S×S in [-1, 1]."""

    def __init__(self, a: np.ndarray, b: np.ndarray, size: int, augment: bool, device: torch.device) -> None:
        import torch

        self.a, self.b = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
        self.size, self.augment = size, augment
        self.load_size = a.shape[1]

    def steps_per_epoch(self, batch_size: int, ranks: int = 1) -> int:
        """An epoch passes over the larger domain once, as the reference's max(len A, len B), in global batches."""
        return max(len(self.a), len(self.b)) // (batch_size * ranks)

    def epoch(
        self, seed: int, epoch: int, batch_size: int, start: int = 0, rank: int = 0, ranks: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's (A, B) batches of one (1-based) epoch from batch ``start`` on; the smaller domain is
        reshuffled each time it runs out.

        The epoch is one global sequence of batches of ``ranks × batch_size``
        pairs, its crops and flips drawn for the whole global batch; rank r takes
        the pairs r, r + ranks, … of each, as ``DistributedSampler`` deals a
        dataset out. Skipped batches still draw their crops and flips, so batch
        ``start`` comes out as in a whole epoch.
        """
        rng = np.random.default_rng(sub_seed(seed, SHUFFLE_STREAM, epoch))
        size = batch_size * ranks
        steps = self.steps_per_epoch(batch_size, ranks)
        order_a, order_b = (_orders(len(images), steps * size, rng) for images in (self.a, self.b))
        for step in range(steps):
            batch = slice(step * size, (step + 1) * size)
            if step < start:
                for _ in ("A", "B"):
                    self._augmentation(size, rng)
                continue
            share = slice(rank, None, ranks)
            yield self._prepare(self.a, order_a[batch], rng, share), self._prepare(self.b, order_b[batch], rng, share)

    def fixed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first images of each domain (as many of each), centre-cropped and unflipped: the panel's inputs."""
        count = min(PANEL_IMAGES, len(self.a), len(self.b))
        margin = (self.load_size - self.size) // 2
        crop = slice(margin, margin + self.size)
        return _to_unit(self.a[:count, crop, crop]), _to_unit(self.b[:count, crop, crop])

    def _prepare(
        self, images: torch.Tensor, index: np.ndarray, rng: np.random.Generator, share: slice = slice(None)
    ) -> torch.Tensor:
        """The ``share`` of a global batch of ``index``, cropped and flipped by draws made for the whole batch."""
        import torch

        corners, flips = self._augmentation(len(index), rng)
        corners, flips, index = corners[share], flips[share], index[share]
        batch = images[torch.from_numpy(index).to(images.device)]  # N×L×L×3 uint8
        if self.augment:
            crops = [
                image[top : top + self.size, left : left + self.size] for image, (top, left) in zip(batch, corners)
            ]
            batch = torch.stack([crop.flip(1) if flip else crop for crop, flip in zip(crops, flips)])
        return _to_unit(batch)

    def _augmentation(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random crop corners (count×2) and horizontal flips (count) for a batch; no draws without augmentation."""
        if not self.augment:
            return np.zeros((count, 2), dtype=np.int64), np.zeros(count, dtype=bool)
        corners = rng.integers(0, self.load_size - self.size + 1, size=(count, 2))
        return corners, rng.random(count) < 0.5


def _orders(count: int, needed: int, rng: np.random.Generator) -> np.ndarray:
    """``needed`` indices into ``count`` images: whole shuffles, one after another, cut to length."""
    return np.concatenate([rng.permutation(count) for _ in range(math.ceil(needed / count))])[:needed]


def _to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 N×H×W×3 → float32 N×3×H×W in [-1, 1], on the pixels' device."""
    return pixels.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()
