"""The real images a model is judged against: its training data by default, or ``--real DIR|npz``.

A generator is compared with the data it learnt: the spec's provenance names
the dataset (``digits`` is bundled; ``mnist`` and folders are found through the
run dir's ``run.json``). A translator is compared on held-out images: each
direction translates the source domain's test split and is compared with the
target domain's test split (digits-m's is built from the held-out digits; a
folder's is ``testA/``, ``testB/``), and the target domain's training images
give the real-vs-real noise floor at the same N.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gantool.artifacts import RUN_OPTIONS_FILE
from gantool.data import (
    MNIST_SIDE,
    digits_labels,
    digits_m_indices,
    digits_test_split,
    load_digits_m,
    load_digits_mnist_style,
    load_image_folder,
    load_mnist,
)
from gantool.errors import UsageError
from gantool.spec import ModelSpec

DIGITS, DIGITS_M, MNIST = "digits", "digits-m", "mnist"


@dataclass(frozen=True)
class RealSet:
    """uint8 images N×H×W×C, where they came from, and their digit labels when known (the bundled digits)."""

    pixels: np.ndarray
    name: str
    labels: np.ndarray | None = None


@dataclass(frozen=True)
class DomainSets:
    """One CycleGAN domain: its held-out test images (translated and compared) and training images (the floor)."""

    test: RealSet
    train: RealSet


def _run_options(model: Path) -> dict[str, object]:
    """``run.json`` of the run dir MODEL is or sits in, {} when there is none."""
    for folder in (model, model.parent):
        path = folder / RUN_OPTIONS_FILE
        if folder.is_dir() and path.is_file():
            try:
                options = json.loads(path.read_text())
            except (OSError, ValueError):
                return {}
            return options if isinstance(options, dict) else {}
    return {}


def load_real_file(path: Path, spec: ModelSpec) -> RealSet:
    """``--real``: a folder of images (resized to the model's size) or an .npz holding uint8 N×H×W×C images."""
    if path.is_dir():
        pixels, _ = load_image_folder(path, spec.height, spec.channels)
        return RealSet(pixels, str(path))
    if path.suffix != ".npz" or not path.is_file():
        raise UsageError(f"--real {path}: expected a folder of images or an .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):  # np.load reads by content: an .npy array under an .npz name
            raise UsageError(f"--real {path}: holds one .npy array, not an .npz archive (np.savez(path, images=...))")
        with loaded as arrays:
            names = list(arrays.files)
            key = "images" if "images" in names else (names[0] if len(names) == 1 else None)
            if key is None:
                raise UsageError(f"--real {path}: no array called 'images' among {', '.join(names) or 'none'}")
            pixels = arrays[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
        raise UsageError(f"--real {path}: not a readable .npz ({exc})") from None
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    expected = (spec.height, spec.width, spec.channels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != expected:
        raise UsageError(
            f"--real {path}: expected uint8 images N×{'×'.join(map(str, expected))}, got {pixels.dtype} {pixels.shape}"
        )
    return RealSet(pixels, str(path))


def generator_real(model: Path, spec: ModelSpec, real: Path | None) -> RealSet:
    """The real images a generator's samples are compared with."""
    if real is not None:
        return load_real_file(real, spec)
    dataset = str(spec.provenance.get("dataset", ""))
    options = _run_options(model)
    if dataset == DIGITS:
        return RealSet(load_digits_mnist_style(), "digits (bundled, 1,797)", digits_labels())
    if dataset == MNIST and (spec.height, spec.channels) == (MNIST_SIDE, 1) and "data_dir" in options:
        return RealSet(load_mnist(Path(str(options["data_dir"])), download=False), "mnist (training images)")
    folder = Path(str(options.get("dataset", "")))
    if options.get("dataset") and folder.is_dir():
        pixels, _ = load_image_folder(folder, spec.height, spec.channels)
        return RealSet(pixels, str(folder))
    raise UsageError(
        f"{model}: cannot find its training data ({dataset or 'no dataset in its spec'}): pass --real DIR|FILE.npz"
    )


def digits_test_reference() -> RealSet:
    """The held-out test digits: what real digits look like to the digits classifier, which never saw them."""
    digits = load_digits_mnist_style()
    test = digits_test_split(len(digits))[1]
    return RealSet(digits[test], "digits test split", digits_labels()[test])


def cyclegan_domains(model: Path, spec: ModelSpec, real: Path | None) -> tuple[DomainSets, DomainSets]:
    """Both domains' test and training images at the model's size: digits-m's, or a folder's trainX/ and testX/."""
    size = spec.height
    dataset = str(spec.provenance.get("dataset", ""))
    if real is None and dataset == DIGITS_M:
        labels = digits_labels()
        (test_a, test_b), (train_a, train_b) = load_digits_m(size, "test"), load_digits_m(size, "train")
        index_test, index_train = digits_m_indices(len(labels), "test"), digits_m_indices(len(labels), "train")
        return (
            DomainSets(
                RealSet(test_a, "digits-m testA", labels[index_test[0]]),
                RealSet(train_a, "digits-m trainA", labels[index_train[0]]),
            ),
            DomainSets(
                RealSet(test_b, "digits-m testB", labels[index_test[1]]),
                RealSet(train_b, "digits-m trainB", labels[index_train[1]]),
            ),
        )
    recorded = _run_options(model).get("dataset")  # Path("") would be the working directory: no dataset is None
    root = real if real is not None else (Path(str(recorded)) if recorded else None)
    if root is None or not root.is_dir():
        raise UsageError(f"{model}: cannot find its data ({dataset or 'unknown'}): pass --real DIR with testA/ testB/")
    missing = [name for name in ("trainA", "trainB", "testA", "testB") if not (root / name).is_dir()]
    if missing:
        given = "--real" if real is not None else "its training data"
        raise UsageError(f"{given} {root}: has no {', '.join(f'{name}/' for name in missing)}")

    def domain(letter: str) -> DomainSets:
        test, _ = load_image_folder(root / f"test{letter}", size, 3)
        train, _ = load_image_folder(root / f"train{letter}", size, 3)
        return DomainSets(RealSet(test, f"{root.name}/test{letter}"), RealSet(train, f"{root.name}/train{letter}"))

    return domain("A"), domain("B")
