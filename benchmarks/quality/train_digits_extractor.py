"""Rebuild the bundled digits extractor: ``python -m gantool.benchmarks.quality.train_digits_extractor``.

The weights gantool ships must be reproducible by anyone, offline, in about
a minute on one CPU thread: this script is the whole recipe. It trains only on
the training digits of ``digits_test_split`` (the held-out test digits are
what ``gantool eval`` scores on, and what this script reports accuracy on) and
is deterministic: the same command on the same machine (same torch, same CPU
kernels) writes the same weights, byte for byte.

Each epoch sees every training digit once, freshly augmented: a small random
shift (±2 px), scale and rotation; then at random either plain or blended over
a random colour photo patch (digits-m's ``|patch − digit|`` recipe, but with
patch positions and sizes drawn from ``--seed``'s generator, never digits-m's
own fixed ones); and at random either kept at 28×28 or taken to 32×32 the way
digits-m does (bicubic) and brought back by ``prepare``, so the network has
seen both sizes' resampling. The accuracies go into the file's metadata, which
``DigitsExtractor.describe`` reports beside every FID.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from gantool.benchmarks.quality.digits_cnn import SIDE, DigitsCNN, prepare
from gantool.data import (
    digits_as_rgb,
    digits_labels,
    digits_m_indices,
    digits_test_split,
    load_digits_m,
    load_digits_mnist_style,
)
from gantool.files import atomic_save

FORMAT, VERSION = "gantool-digits-extractor", "1"
DEFAULT_OUT = Path(__file__).with_name("digits_cnn.safetensors")
DEFAULT_EPOCHS, DEFAULT_SEED = 20, 0
BATCH, LEARNING_RATE = 64, 2e-3
DIGITS_M_SIDE = 32  # the size gantool eval reads digits-m at (its default CycleGAN size)


def jitter(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey uint8 N×28×28×1 → the same, each shifted ±2 px, scaled 0.9-1.1× and rotated ±10° at random."""
    count = len(digits)
    scale = rng.uniform(0.9, 1.1, count)
    angle = np.radians(rng.uniform(-10.0, 10.0, count))
    shift = rng.uniform(-2.0, 2.0, (count, 2)) * 2 / SIDE  # pixels → affine_grid's [-1, 1] units
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale  # the output→input map: its inverse scales by 1/s
    theta = np.stack([np.stack([cos, -sin, shift[:, 0]], 1), np.stack([sin, cos, shift[:, 1]], 1)], 1)
    batch = torch.from_numpy(digits).permute(0, 3, 1, 2).float()
    grid = torch.nn.functional.affine_grid(torch.from_numpy(theta).float(), list(batch.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def blend(digits: np.ndarray, photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """uint8 N×S×S×3 digits → |patch − digit| over random photo patches (sides 28-56 px, digits-m's is 40)."""
    out = np.empty_like(digits)
    size = digits.shape[1]
    for i, digit in enumerate(digits):
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(28, 57))
        top, left = rng.integers(photo.shape[0] - side + 1), rng.integers(photo.shape[1] - side + 1)
        patch = Image.fromarray(photo[top : top + side, left : left + side])
        patch_pixels = np.asarray(patch.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
        out[i] = np.abs(patch_pixels - digit.astype(np.int16)).astype(np.uint8)
    return out


def augment(digits: np.ndarray, photos: list[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
    """One epoch's inputs: each digit jittered, at random plain or on a photo, at 28 or 32 px; then ``prepare``d."""
    moved = jitter(digits, rng)
    on_photo, at_32 = rng.random(len(digits)) < 0.5, rng.random(len(digits)) < 0.5
    out = torch.empty(len(digits), 3, SIDE, SIDE)
    for big in (False, True):
        chosen = np.flatnonzero(at_32 == big)
        if len(chosen) == 0:
            continue
        rgb = digits_as_rgb(moved[chosen], DIGITS_M_SIDE if big else SIDE)
        photo_rows = on_photo[chosen]
        rgb[photo_rows] = blend(rgb[photo_rows], photos, rng)
        out[torch.from_numpy(chosen)] = prepare(rgb)
    return out


def accuracy(model: DigitsCNN, pixels: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``pixels`` (uint8 N×H×W×C) the model classifies as ``labels``."""
    model.eval()
    with torch.inference_mode():
        predicted = torch.cat([model(prepare(pixels[i : i + 256])).argmax(1) for i in range(0, len(pixels), 256)])
    return float((predicted.numpy() == labels).mean())


def train(epochs: int, seed: int) -> tuple[DigitsCNN, dict[str, float]]:
    """Train a fresh DigitsCNN for ``epochs`` from ``seed``; returns it with its held-out test accuracies."""
    from sklearn.datasets import load_sample_images  # scikit-learn's two bundled photos: no download

    torch.set_num_threads(1)  # one thread: the same reductions in the same order, so the same weights
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    digits, labels = load_digits_mnist_style(), digits_labels()
    train_index, test_index = digits_test_split(len(digits))
    photos = list(load_sample_images().images)
    model = DigitsCNN()
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train_index) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=LEARNING_RATE, total_steps=steps)
    for epoch in range(epochs):
        inputs, targets = augment(digits[train_index], photos, rng), torch.from_numpy(labels[train_index])
        order = torch.from_numpy(rng.permutation(len(train_index)))
        model.train()
        total = 0.0
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            loss = torch.nn.functional.cross_entropy(model(inputs[rows]), targets[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(rows)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f}", file=sys.stderr)
    test_a, test_b = load_digits_m(DIGITS_M_SIDE, "test")
    a_index, b_index = digits_m_indices(len(digits), "test")
    scores = {
        "plain": accuracy(model, digits[test_index], labels[test_index]),
        "digits_m_a": accuracy(model, test_a, labels[a_index]),
        "digits_m_b": accuracy(model, test_b, labels[b_index]),
    }
    return model.eval(), scores


def write_weights(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """``save_file``, then the header's metadata keys sorted, so the same weights give the same bytes (and sha256).

    safetensors writes the tensors in a fixed order but the metadata in
    hash-map order, which changes from one process to the next. Sorting the
    keys keeps the header's length (only the order changes), so the tensor
    offsets stay valid.
    """
    save_file(state, str(path), metadata=metadata)
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > length:  # cannot happen for JSON that only changed order; refuse rather than corrupt
        raise RuntimeError(f"{path}: re-serialised safetensors header grew from {length} to {len(text)} bytes")
    path.write_bytes(data[:8] + text.ljust(length) + data[8 + length :])


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, train, report the test accuracies and write the weights atomically."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write (default: the bundled file)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    started = time.perf_counter()
    model, scores = train(args.epochs, args.seed)
    command = f"python -m gantool.benchmarks.quality.train_digits_extractor --epochs {args.epochs} --seed {args.seed}"
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        **{f"test_accuracy_{name}": f"{value:.4f}" for name, value in scores.items()},
        "train_command": command,
        "seed": str(args.seed),
        "epochs": str(args.epochs),
        "torch_version": torch.__version__,
    }
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    atomic_save(args.out, lambda tmp: write_weights(tmp, state, metadata))
    print(", ".join(f"test accuracy {name} {value:.2%}" for name, value in scores.items()), file=sys.stderr)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
