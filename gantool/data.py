"""Training images as float32 arrays N×C×H×W in [-1, 1]: bundled digits, MNIST IDX files, any image folder.

Everything here works offline. ``digits`` is scikit-learn's bundled
handwritten-digits set (1,797 real 8×8 scans) presented like MNIST: upscaled
to a 20×20 box, centred by centre of mass in a 28×28 frame. MNIST is read from
its standard IDX files; downloading them is an opt-in convenience with
checksums.

For CycleGAN, ``digits-m`` is an unpaired pair built from the same bundled
data, in the spirit of MNIST→MNIST-M (Ganin & Lempitsky 2015): domain A the
digits, domain B other digits blended over colour patches of the two photos
scikit-learn ships. Image folders in the unpaired ``trainA/ trainB/`` layout
load as two RGB arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from gantool.errors import GantoolError, UsageError
from gantool.files import atomic_write_bytes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
MNIST_SIDE = 28
MNIST_BOX = 20  # MNIST digits fit a 20×20 box inside the 28×28 frame
DIGITS_M_SEED = 2015  # fixes the A/B split and the patch positions: digits-m is one dataset, whatever --seed
DIGITS_TEST_SEED = 1998  # fixes the held-out test digits (the year of LeCun et al.'s MNIST paper)
DIGITS_TEST_SHARE = 0.2  # of the 1,797 digits held out: the digits extractor's test set and digits-m's testA/testB
DIGITS_M_PATCH = 40  # side, in photo pixels, of the patch behind each B digit (resized to the digit's size)
UNPAIRED_FOLDERS = ("trainA", "trainB")
MAX_IDX_BYTES = 1 << 30  # pixels an IDX file may hold: MNIST's are 47 MB, EMNIST's largest 547 MB

# The training images of MNIST, as published; md5 as listed by torchvision.
MNIST_TRAIN_IMAGES = "train-images-idx3-ubyte"
MNIST_MD5 = "f68b3c2dcbeaaa9fbdd348bbdeb94873"
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def pixels_to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×C → float32 N×C×H×W in [-1, 1], the generators' Tanh range."""
    return (pixels.astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0).copy()


def load_digits_mnist_style() -> np.ndarray:
    """scikit-learn's 1,797 digits as uint8 N×28×28×1, framed the way MNIST frames its digits."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    raw = load_digits().images  # N×8×8, values 0..16
    out = np.zeros((len(raw), MNIST_SIDE, MNIST_SIDE, 1), dtype=np.uint8)
    margin = (MNIST_SIDE - MNIST_BOX) // 2
    for i, digit in enumerate(raw):
        small = Image.fromarray(np.clip(digit * 16.0, 0, 255).astype(np.uint8))
        box = np.asarray(small.resize((MNIST_BOX, MNIST_BOX), Image.Resampling.BICUBIC), dtype=np.uint8)
        frame = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.uint8)
        frame[margin : margin + MNIST_BOX, margin : margin + MNIST_BOX] = box
        out[i, :, :, 0] = _centre_of_mass_shift(frame)
    return out


def _centre_of_mass_shift(frame: np.ndarray) -> np.ndarray:
    """Shift a digit so its centre of mass sits at the frame centre, as MNIST does."""
    mass = frame.astype(np.float64)
    total = mass.sum()
    if total == 0:
        return frame
    rows, cols = np.indices(frame.shape)
    centre = (np.array(frame.shape) - 1) / 2
    dy, dx = np.rint(centre - [(rows * mass).sum() / total, (cols * mass).sum() / total]).astype(int)
    limit = (MNIST_SIDE - MNIST_BOX) // 4  # keep at least a 2-pixel margin
    dy, dx = int(np.clip(dy, -limit, limit)), int(np.clip(dx, -limit, limit))
    return np.roll(frame, (dy, dx), axis=(0, 1))  # the shift is smaller than the empty margin: nothing wraps


def read_idx_images(path: Path) -> np.ndarray:
    """An IDX3 image file (plain or .gz) → uint8 N×H×W×1, refusing truncated, foreign or absurd files.

    The 16-byte header is checked before the pixels are read, and only as many
    bytes as it promises (at most MAX_IDX_BYTES) are ever read: a small .gz
    that would inflate to gigabytes is refused, not decompressed.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
            header = handle.read(16)
            if len(header) < 16:
                raise GantoolError(f"{path}: truncated IDX file ({len(header)} bytes, header needs 16)")
            magic, count, rows, cols = struct.unpack(">IIII", header)
            if magic != 0x00000803:
                raise GantoolError(f"{path}: not an IDX image file (magic {magic:#010x}, expected 0x00000803)")
            if count == 0 or not 4 <= rows <= 4096 or not 4 <= cols <= 4096:
                raise GantoolError(f"{path}: IDX file holds no usable images ({count} of {rows}×{cols})")
            size = count * rows * cols
            if size > MAX_IDX_BYTES:
                raise GantoolError(f"{path}: IDX header promises {size:,} bytes of pixels, more than gantool reads")
            pixels = handle.read(size)
            extra = handle.read(1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise GantoolError(f"{path}: cannot read IDX file ({exc})") from None
    if len(pixels) != size:
        raise GantoolError(f"{path}: truncated IDX file ({16 + len(pixels)} bytes, header promises {16 + size})")
    if extra:
        raise GantoolError(f"{path}: IDX file is longer than the {16 + size} bytes its header promises")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(count, rows, cols, 1)


def find_mnist(data_dir: Path) -> Path | None:
    """The MNIST training-images file in ``data_dir`` (or torchvision's MNIST/raw layout), if any."""
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for name in (MNIST_TRAIN_IMAGES, MNIST_TRAIN_IMAGES + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def download_mnist(data_dir: Path) -> Path:
    """Fetch the MNIST training images into ``data_dir``, verified by md5; one clear line when offline."""
    target = data_dir / (MNIST_TRAIN_IMAGES + ".gz")
    errors = []
    for mirror in MNIST_MIRRORS:
        try:
            with urllib.request.urlopen(mirror + target.name, timeout=30) as response:
                payload = response.read()
        except OSError as exc:
            errors.append(str(getattr(exc, "reason", exc)))
            continue
        if hashlib.md5(payload).hexdigest() != MNIST_MD5:
            errors.append(f"checksum mismatch from {mirror}")
            continue
        atomic_write_bytes(target, payload)
        return target
    raise GantoolError(f"cannot download MNIST (offline?): {errors[-1] if errors else 'no mirror'}")


def load_mnist(data_dir: Path, download: bool) -> np.ndarray:
    """MNIST training images as uint8 N×28×28×1 from ``data_dir``, downloading only if asked."""
    path = find_mnist(data_dir)
    if path is None:
        if not download:
            raise UsageError(f"MNIST not found in {data_dir}: put {MNIST_TRAIN_IMAGES}[.gz] there, or pass --download")
        path = download_mnist(data_dir)
    return read_idx_images(path)


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image file → uint8 size×size×channels: converted, centre-cropped to a square, resized."""
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.uint8)
    return array.reshape(size, size, channels)


def guess_channels(paths: list[Path]) -> int:
    """1 if every sampled image is greyscale, else 3: a folder of scans trains a grey model."""
    for path in paths[:64]:
        try:
            with Image.open(path) as image:
                if image.mode not in ("1", "L", "LA", "I", "I;16", "F"):
                    return 3
        except (OSError, ValueError, Image.DecompressionBombError):  # unreadable: load_image_folder skips it too
            continue
    return 1


def load_image_folder(folder: Path, size: int, channels: int | None) -> tuple[np.ndarray, list[str]]:
    """All readable images under ``folder`` as uint8 N×size×size×C, plus the names of unreadable files."""
    if not folder.is_dir():
        raise UsageError(f"dataset {folder} is neither 'digits', 'mnist' nor a folder")
    paths = list_images(folder)
    if not paths:
        raise UsageError(f"dataset folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    channels = channels or guess_channels(paths)
    images, skipped = [], []
    for path in paths:
        try:
            images.append(load_image(path, size, channels))
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            skipped.append(str(path))
    if not images:
        raise UsageError(f"dataset folder {folder} has no readable images ({len(skipped)} unreadable)")
    return np.stack(images), skipped


def digits_m_split(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of domain A and of domain B among ``count`` digits: disjoint seeded halves, so no pair exists."""
    order = np.random.default_rng(DIGITS_M_SEED).permutation(count)
    half = (len(order) + 1) // 2
    return np.sort(order[:half]), np.sort(order[half:])


def digits_as_rgb(digits: np.ndarray, size: int) -> np.ndarray:
    """Grey uint8 N×H×W×1 digits → uint8 N×size×size×3 (white on black), resized bicubic when needed."""
    if digits.shape[1:3] != (size, size):
        resized = [Image.fromarray(d[:, :, 0]).resize((size, size), Image.Resampling.BICUBIC) for d in digits]
        digits = np.stack([np.asarray(image, dtype=np.uint8) for image in resized])[..., None]
    return np.ascontiguousarray(np.repeat(digits, 3, axis=3))


def blend_over_photos(digits: np.ndarray, seed: int) -> np.ndarray:
    """MNIST-M's recipe on uint8 N×S×S×3 digits: |patch − digit| per channel, one photo patch per digit.

    The patches are cut at seeded positions from china.jpg and flower.jpg,
    which scikit-learn bundles, so the result is the same offline everywhere.
    """
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # two 427×640×3 uint8 photos
    rng = np.random.default_rng(seed)
    size = digits.shape[1]
    out = np.empty_like(digits)
    for i, digit in enumerate(digits):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - DIGITS_M_PATCH + 1)
        left = rng.integers(photo.shape[1] - DIGITS_M_PATCH + 1)
        patch = Image.fromarray(photo[top : top + DIGITS_M_PATCH, left : left + DIGITS_M_PATCH])
        patch_pixels = np.asarray(patch.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
        out[i] = np.abs(patch_pixels - digit.astype(np.int16)).astype(np.uint8)
    return out


def digits_labels() -> np.ndarray:
    """The class (0..9) of each of scikit-learn's 1,797 digits, in ``load_digits_mnist_style``'s order."""
    from sklearn.datasets import load_digits

    return np.asarray(load_digits().target, dtype=np.int64)


def digits_test_split(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the training and the held-out test digits among ``count``: a fixed seeded 80/20 split.

    The digits extractor learns only the training digits, and digits-m's
    test split is built from the test digits, so every quality figure on
    digits-m reads images that neither the classifier nor the CycleGAN saw.
    """
    order = np.random.default_rng(DIGITS_TEST_SEED).permutation(count)
    test = round(count * DIGITS_TEST_SHARE)
    return np.sort(order[test:]), np.sort(order[:test])


def digits_m_indices(count: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Indices (into the digits) of domain A's and domain B's images of one split: ``train``, ``test`` or ``all``."""
    a_index, b_index = digits_m_split(count)
    if split == "all":
        return a_index, b_index
    if split not in ("train", "test"):
        raise ValueError(f"digits-m split must be train, test or all, got {split!r}")
    keep = digits_test_split(count)[0 if split == "train" else 1]
    return a_index[np.isin(a_index, keep)], b_index[np.isin(b_index, keep)]


def load_digits_m(size: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The digits-m pair at ``size``: (A, B) as uint8 N×size×size×3, A plain digits, B digits over photo patches.

    ``split`` is ``train`` (what ``gantool train cyclegan`` learns), ``test``
    (the held-out digits, for ``gantool eval``) or ``all``. Each B image is the
    same in every split: the patches are cut for all of B, then selected.
    """
    digits = load_digits_mnist_style()
    b_all = digits_m_split(len(digits))[1]
    a_index, b_index = digits_m_indices(len(digits), split)
    b_pixels = blend_over_photos(digits_as_rgb(digits[b_all], size), DIGITS_M_SEED)
    return digits_as_rgb(digits[a_index], size), b_pixels[np.searchsorted(b_all, b_index)]


def load_unpaired_folder(root: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/trainA`` and ``root/trainB`` as uint8 RGB N×size×size×3 each, plus the unreadable files skipped.

    Images of any size and mode are converted to RGB, centre-cropped to a
    square and resized; ``testA/``, ``testB/`` may exist and are not read.
    """
    if not root.is_dir():
        raise UsageError(f"dataset {root} is neither 'digits-m' nor a folder")
    missing = [f"{name}/" for name in UNPAIRED_FOLDERS if not (root / name).is_dir()]
    if missing:
        raise UsageError(
            f"dataset folder {root} has no {' and no '.join(missing)} (expected trainA/ trainB/ [testA/ testB/])"
        )
    (a, skipped_a), (b, skipped_b) = (load_image_folder(root / name, size, 3) for name in UNPAIRED_FOLDERS)
    return a, b, skipped_a + skipped_b
