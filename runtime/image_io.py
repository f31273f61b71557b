"""Image files in and out for ``gantool translate``: which inputs, their output names, decoding them.

INPUT arguments may be files, folders (searched recursively for image files)
or glob patterns (expanded here, so a quoted ``'photos/*.jpg'`` behaves like
the shell's expansion). Each input becomes one output PNG named after it:
``x.jpg`` → ``x.png``; a file found inside a folder keeps its path relative to
that folder (``photos/2024/x.jpg`` → ``2024/x.png``), so equal names in
different sub-folders do not collide. Two inputs that would still land on the
same output name are refused before any work, naming both.

PNG output, whatever the input format: a translation is a new image, and a
lossless format keeps it exactly as the network made it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, ImageOps

from gantool.data import IMAGE_SUFFIXES
from gantool.errors import UsageError
from gantool.files import atomic_write_bytes
from gantool.images import png_bytes

OUTPUT_SUFFIX = ".png"
MANIFEST = ".gantool-translate.json"  # in the output folder: what its images are a function of (for --resume)
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    """One input image: where it is, how to name it to the user, where its translation goes (relative)."""

    path: Path
    output: PurePath


def collect_inputs(inputs: list[Path], exclude: Path | None = None) -> list[Source]:
    """Expand INPUT arguments into sources with unique output names; UsageError for a missing input or a clash.

    ``exclude`` (the output folder) is never searched, so re-running into a folder
    inside an input folder does not translate the previous translations.
    """
    excluded = exclude.resolve() if exclude is not None else None
    sources: dict[PurePath, Source] = {}
    for argument in inputs:
        for path in _expand(argument):
            for source in _sources_in(path, excluded):
                earlier = sources.get(source.output)
                if earlier is None:
                    sources[source.output] = source
                elif earlier.path.resolve() != source.path.resolve():  # the same file twice is fine
                    raise UsageError(
                        f"{earlier.path} and {source.path} would both be written as {source.output}: "
                        "rename one, or translate them into different folders"
                    )
    return list(sources.values())


def _expand(argument: Path) -> list[Path]:
    """An existing path as is; otherwise a glob pattern's matches (``**`` recursive)."""
    if argument.exists():
        return [argument]
    text = str(argument)
    if not GLOB_CHARACTERS & set(text):
        raise UsageError(f"input {argument} does not exist")
    matches = sorted(glob.glob(text, recursive=True))
    if not matches:
        raise UsageError(f"input pattern {argument} matches no files")
    return [Path(match) for match in matches]


def _sources_in(path: Path, excluded: Path | None) -> list[Source]:
    if not path.is_dir():
        return [Source(path, PurePath(path.stem + OUTPUT_SUFFIX))]
    found = [
        file
        for file in sorted(path.rglob("*"))
        if file.suffix.lower() in IMAGE_SUFFIXES
        and file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(path).parts)  # hidden files and folders
        and (excluded is None or not file.resolve().is_relative_to(excluded))
    ]
    if not found:
        raise UsageError(f"input folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [Source(file, file.relative_to(path).with_suffix(OUTPUT_SUFFIX)) for file in found]


@dataclass(frozen=True)
class Decoding:
    """How an image file becomes the network's input: by default exactly as CycleGAN's own ``test.py`` does it.

    pytorch-CycleGAN-and-pix2pix reads a photo with ``Image.open(path).convert('RGB')``
    and resizes it to ``load_size``×``load_size`` (256 at test time) with Pillow's
    bicubic filter from the full decode. gantool does the same, so that its translation
    of a photo is the reference's, pixel for pixel (within 1 level: the reference
    truncates to 8 bits, gantool rounds). The fields say where a user may ask for
    something else:

    - ``size``: (H, W) every image is resized to; None keeps each image's own size.
    - ``round_to``: with ``size`` None, resize each image to its own size rounded to
      a multiple of this (the reference's ``--preprocess none``); None pads instead.
    - ``exif_orientation``: turn photos upright by their EXIF tag first. On by default,
      a deliberate difference: the reference ignores the tag.
    - ``reduced_jpeg``: let the JPEG decoder scale down by 1/2, 1/4 or 1/8 (Pillow's
      ``draft``) when shrinking a lot. Faster on large photos, but not the full
      decode's pixels, so never on by default.
    """

    size: tuple[int, int] | None = None
    round_to: int | None = None
    exif_orientation: bool = True
    reduced_jpeg: bool = False

    def describe(self) -> str:
        """``256×256``, ``each image's own size`` or ``each image's size rounded to a multiple of 4``, and options."""
        if self.size is not None:
            where = f"{self.size[0]}×{self.size[1]}"
        elif self.round_to is not None:
            where = f"each image's size rounded to a multiple of {self.round_to}"
        else:
            where = "each image's own size"
        extras = [] if self.exif_orientation else ["EXIF orientation ignored"]
        extras += ["reduced-scale JPEG decoding"] if self.reduced_jpeg else []
        return where + "".join(f", {extra}" for extra in extras)


def read_image(path: Path, channels: int, decoding: Decoding) -> np.ndarray:
    """Decode one file to uint8 H×W×``channels`` as ``decoding`` says; decoding errors propagate.

    Every mode goes through Pillow's ``convert('RGB')`` first, as the reference's
    does: palettes are looked up, grey is repeated, alpha and transparency are
    dropped, 16- and 32-bit values are clipped to 0–255. A one-channel model then
    takes its luma (``convert('L')``). The caller reports a file that fails by name.
    """
    with Image.open(path) as opened:
        if decoding.reduced_jpeg and decoding.size is not None:
            opened.draft("RGB", (decoding.size[1], decoding.size[0]))  # JPEG only: a no-op for other formats
        image = ImageOps.exif_transpose(opened) if decoding.exif_orientation else opened
        image = image.convert("RGB")
        if channels == 1:
            image = image.convert("L")
        target = _target_size(image.size, decoding)
        if image.size != target:
            image = image.resize(target, Image.Resampling.BICUBIC)  # from the full image: no reducing_gap
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def _target_size(size: tuple[int, int], decoding: Decoding) -> tuple[int, int]:
    """Pillow's (width, height) to resize an image of ``size`` to (its own size when nothing asks otherwise)."""
    if decoding.size is not None:
        return decoding.size[1], decoding.size[0]
    if decoding.round_to is None:
        return size
    base = decoding.round_to  # the reference's __make_power_2: Python's round (to even on .5), at least one base
    width, height = size
    return max(base, round(width / base) * base), max(base, round(height / base) * base)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write one uint8 H×W×C image as PNG, atomically: under its final name it is complete (``--resume`` trusts that)."""
    atomic_write_bytes(path, png_bytes(pixels))
