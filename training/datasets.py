"""Resolve ``--dataset`` for the vanilla GAN: the bundled digits, MNIST IDX files, or a folder of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gantool.data import MNIST_SIDE, load_digits_mnist_style, load_image_folder, load_mnist
from gantool.errors import UsageError
from gantool.training.config import BUILTIN_DATASETS


def load_gan_images(dataset: str, data_dir: Path, download: bool, image_size: int) -> tuple[np.ndarray, str, list[str]]:
    """Training images as uint8 N×H×W×C, a short dataset name for provenance, and unreadable files skipped.

    ``digits`` and ``mnist`` are names, so a folder called that is reached as ``./digits``.
    The built-in sets come at their native 28×28; only folders are resized to ``image_size``.
    """
    if dataset in BUILTIN_DATASETS:
        if image_size != MNIST_SIDE:
            raise UsageError(f"--image-size applies to image folders; {dataset} is {MNIST_SIDE}×{MNIST_SIDE}")
        pixels = load_digits_mnist_style() if dataset == "digits" else load_mnist(data_dir, download)
        return pixels, dataset, []
    folder = Path(dataset)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"dataset {folder} is a file: expected digits, mnist or a folder of images")
    pixels, skipped = load_image_folder(folder, image_size, None)
    return pixels, folder.resolve().name, skipped


def skipped_warning(folder: str, skipped: list[str]) -> str:
    """One warning line naming the first few unreadable files, so a broken folder is noticed but not fatal."""
    names = ", ".join(Path(name).name for name in skipped[:3]) + (", …" if len(skipped) > 3 else "")
    return f"warning: skipped {len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''} in {folder} ({names})"
