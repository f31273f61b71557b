"""The digits extractor's network and its preprocessing: a small CNN that reads 3×28×28 digits, plain or on photos.

One network scores both sides of digits-m, so it must read a digit as a
white-on-black MNIST-style digit (domain A, also what a digits GAN draws) and
as one blended over a colour photo patch (domain B, ``|patch − digit|``). The
128 values after the first fully connected layer's ReLU are the features FID
and its kin compare; the last layer's 10 logits give the class, for accuracy
and class-coverage figures. It is small on purpose (about 76k parameters,
~300 KB of float32): it ships inside the wheel and trains in a minute on one CPU
thread (``train_digits_extractor``), so anyone can rebuild and check it.

``prepare`` is the only way pixels reach the network, so the training script,
the extractor and its tests all see exactly the same preprocessing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gantool.errors import UsageError

SIDE = 28  # the network's input side: MNIST's frame
FEATURES = 128  # the feature vector's length
CLASSES = 10


class DigitsCNN(nn.Module):
    """(conv-BN-ReLU-pool) ×3 → fc 128 + ReLU (the features) → dropout → fc 10; input float N×3×28×28 in [0, 1].

    BatchNorm is there for domain B: photo patches swing a digit's contrast
    and brightness far more than plain digits do, and without it the same
    recipe read held-out digits-m B at 93.5% instead of 97%. In eval mode it
    is a fixed per-channel affine map, so features do not depend on the batch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),  # N×3×28×28 → N×32×28×28
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # → N×32×14×14
            nn.Conv2d(32, 64, 3, padding=1),  # → N×64×14×14
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),  # → N×64×7×7
            nn.Conv2d(64, 32, 3, padding=1),  # → N×32×7×7
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # → N×32×3×3 (floor drops the last row and column: input rows 24-27, MNIST's margin)
            nn.Flatten(),  # → N×288
        )
        self.embed = nn.Sequential(nn.Linear(32 * 3 * 3, FEATURES), nn.ReLU())  # → N×128: the features
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURES, CLASSES))  # → N×10 logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128 post-ReLU activations FID compares: N×3×28×28 → N×128."""
        return self.embed(self.body(x))  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: N×3×28×28 → N×10 (dropout only acts in train mode)."""
        return self.head(self.features(x))  # type: ignore[no-any-return]


def prepare(pixels: np.ndarray) -> torch.Tensor:
    """uint8 N×H×W×C (C 1 or 3) → float32 N×3×28×28 in [0, 1]: grey repeated to RGB, resized, /255.

    The resize is bilinear with antialiasing (a triangle filter as wide as the
    downscale), so a 32×32 digits-m image or a 64×64 sample loses detail
    rather than aliasing; it has only non-negative weights, so the result stays
    in [0, 1]. Anything but uint8 images with 1 or 3 channels is refused: an
    alpha channel or a float image would be read as something it is not.
    """
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        kind = pixels.dtype if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise UsageError(f"the digits extractor reads uint8 images, got {kind}")
    if pixels.ndim != 4 or pixels.shape[3] not in (1, 3) or min(pixels.shape[1:3], default=0) < 1:
        raise UsageError(
            f"the digits extractor reads uint8 N×H×W×C images with C 1 (grey) or 3 (RGB), got shape "
            f"{'×'.join(map(str, pixels.shape))}"
        )
    batch = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float()  # N×C×H×W, 0..255
    if batch.shape[1] == 1:
        batch = batch.expand(-1, 3, -1, -1)  # N×1×H×W → N×3×H×W
    if batch.shape[2:] != (SIDE, SIDE):
        batch = nn.functional.interpolate(
            batch, size=(SIDE, SIDE), mode="bilinear", antialias=True, align_corners=False
        )
    return (batch / 255.0).contiguous()
