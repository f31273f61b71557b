"""Converting network outputs to pictures and writing them: numpy and Pillow only."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def to_uint8(batch: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Network output N×C×H×W in ``value_range`` → uint8 N×H×W×C pixels."""
    low, high = value_range
    scaled = (np.asarray(batch, dtype=np.float32) - low) * (255.0 / (high - low))
    pixels = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1))


def from_uint8(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """uint8 N×H×W×C pixels → float32 N×C×H×W in ``value_range`` (the inverse of to_uint8)."""
    low, high = value_range
    scaled = pixels.astype(np.float32).transpose(0, 3, 1, 2) * ((high - low) / 255.0) + low
    return np.ascontiguousarray(scaled)


def to_pil(image: np.ndarray) -> Image.Image:
    """One uint8 H×W×C image → a Pillow image (grey for one channel, RGB for three)."""
    return Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)


def grid(images: np.ndarray, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile uint8 N×H×W×C images into one uint8 image, ``columns`` wide (default: square)."""
    count, height, width, channels = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    canvas = np.zeros((rows * (height + pad) + pad, columns * (width + pad) + pad, channels), dtype=np.uint8)
    for i, image in enumerate(images):
        top = pad + (i // columns) * (height + pad)
        left = pad + (i % columns) * (width + pad)
        canvas[top : top + height, left : left + width] = image
    return canvas


def png_bytes(image: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode one uint8 H×W×C image as PNG; a low compression level keeps writing fast."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
