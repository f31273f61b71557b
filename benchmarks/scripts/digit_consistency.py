"""Does a digits-m CycleGAN keep the digit? Classify originals, translations and cycle reconstructions.

A logistic regression on 8×8 digit features reads each image. Two of them,
each trained on the half of scikit-learn's digits that the other domain was
built from, so no image is read by a classifier that saw its digit:

- A side (the classifier learnt domain B's digits): the real A digits, their
  translations G_A(a) and reconstructions G_B(G_A(a));
- B side (the classifier learnt domain A's digits): the real B digits, G_B(b), G_A(G_B(b)).

Features: a grey "ink" map, each pixel's colour distance from the image's
median colour (so a dark digit on a light patch reads like a light one on
black), the central digit box cut out, box-filtered to 8×8 and scaled to
0..16 like scikit-learn's digits; standardised for the regression. Accuracy
on the real images of a domain is the ceiling for what its translations can
reach. Agreement is label(output) == label(input image), i.e. the digit
survived as the classifier read it.

    python benchmarks/scripts/digit_consistency.py runs/cyclegan [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from gantool.artifacts import checkpoint_in
from gantool.checkpoint import load_generator
from gantool.data import (
    DIGITS_M_SEED,
    MNIST_BOX,
    MNIST_SIDE,
    blend_over_photos,
    digits_as_rgb,
    digits_m_split,
    load_digits_mnist_style,
)
from gantool.images import from_uint8, to_uint8


def features(pixels: np.ndarray) -> np.ndarray:
    """uint8 N×S×S×3 → float N×64: the grey ink map of the central digit box at 8×8, scaled to 0..16."""
    size = pixels.shape[1]
    margin = round(size * (MNIST_SIDE - MNIST_BOX) / 2 / MNIST_SIDE)
    colour = pixels.astype(np.float32)
    ink = np.linalg.norm(colour - np.median(colour, axis=(1, 2), keepdims=True), axis=3)  # N×S×S
    box = ink[:, margin : size - margin, margin : size - margin]
    small = np.stack([np.asarray(Image.fromarray(image).resize((8, 8), Image.Resampling.BOX)) for image in box])
    flat = small.reshape(len(small), -1)
    return flat / flat.max(axis=1, keepdims=True).clip(min=1e-6) * 16.0


def translate(generator: torch.nn.Module, pixels: np.ndarray, batch: int = 128) -> np.ndarray:
    """uint8 N×S×S×3 through a translator → uint8 N×S×S×3."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(pixels), batch):
            images = torch.from_numpy(from_uint8(pixels[start : start + batch], (-1.0, 1.0)))
            outputs.append(to_uint8(generator(images).numpy(), (-1.0, 1.0)))
    return np.concatenate(outputs)


def classifier(pixels: np.ndarray, labels: np.ndarray) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features(pixels), labels)


def side(
    name: str, reader: Pipeline, real: np.ndarray, restyled: np.ndarray, labels: np.ndarray,
    there: torch.nn.Module, back: torch.nn.Module,
) -> dict[str, float]:  # fmt: skip
    """One direction: accuracies on the real images and on the same digits drawn in the other domain's style
    (the ceilings), then how often the translation and the cycle keep the digit the real image was read as."""
    translated = translate(there, real)
    images = {"real": real, "restyled": restyled, "translated": translated, "cycle": translate(back, translated)}
    read = {key: reader.predict(features(pixels)) for key, pixels in images.items()}
    figures = {f"{name}_accuracy_{key}": float(np.mean(read[key] == labels)) for key in images}
    for key in ("translated", "cycle"):
        figures[f"{name}_agreement_{key}"] = float(np.mean(read[key] == read["real"]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run dir of 'gantool train cyclegan' on digits-m")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    a2b, spec = load_generator(checkpoint_in(args.run_dir, "a2b"))
    b2a, _ = load_generator(checkpoint_in(args.run_dir, "b2a"))
    if spec.provenance.get("dataset") != "digits-m":
        raise SystemExit(f"{args.run_dir} was trained on {spec.provenance.get('dataset')!r}, not digits-m")
    size = spec.height
    digits, labels = load_digits_mnist_style(), load_digits().target
    a_index, b_index = digits_m_split(len(digits))
    plain_a, plain_b = digits_as_rgb(digits[a_index], size), digits_as_rgb(digits[b_index], size)
    real_b = blend_over_photos(plain_b, DIGITS_M_SEED)  # exactly domain B as training saw it
    # Each side's reader learns the other half's digits, drawn plain and over photo patches.
    reader_a = classifier(np.concatenate([plain_b, real_b]), np.tile(labels[b_index], 2))
    reader_b = classifier(
        np.concatenate([plain_a, blend_over_photos(plain_a, DIGITS_M_SEED + 1)]), np.tile(labels[a_index], 2)
    )
    restyled_a = blend_over_photos(plain_a, DIGITS_M_SEED + 2)  # A's digits as domain B would draw them
    figures = {"run": str(args.run_dir), "size": size, "images_a": len(a_index), "images_b": len(b_index)}
    figures |= side("a", reader_a, plain_a, restyled_a, labels[a_index], a2b, b2a)
    figures |= side("b", reader_b, real_b, plain_b, labels[b_index], b2a, a2b)

    print(f"{'':44} {'A: a, G_A(a), G_B(G_A(a))':>26} {'B: b, G_B(b), G_A(G_B(b))':>26}")
    for label, key in [
        ("accuracy: real images (cycle ceiling)", "accuracy_real"),
        ("accuracy: other style (translation ceiling)", "accuracy_restyled"),
        ("accuracy: translations", "accuracy_translated"),
        ("accuracy: cycle reconstructions", "accuracy_cycle"),
        ("agreement with real: translations", "agreement_translated"),
        ("agreement with real: cycle reconstructions", "agreement_cycle"),
    ]:
        print(f"{label:44} {figures['a_' + key]:>26.1%} {figures['b_' + key]:>26.1%}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
