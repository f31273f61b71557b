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


def read_image(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """Decode one file to uint8 H×W×``channels``, upright (EXIF orientation), resized to ``size`` (H, W) if given.

    Modes are converted the way gantool's training data is (Pillow's ``convert``:
    palette, grey, CMYK, RGBA → RGB or L; alpha dropped). Decoding errors propagate:
    the caller reports the file by name.
    """
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as opened:
        if size is not None:
            opened.draft(mode, (size[1], size[0]))  # JPEG: decode at a reduced scale when shrinking a lot
        image = ImageOps.exif_transpose(opened).convert(mode)
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write one uint8 H×W×C image as PNG, atomically: under its final name it is complete (``--resume`` trusts that)."""
    atomic_write_bytes(path, png_bytes(pixels))
