"""The translation API behind ``gantool translate`` and ``gantool.load`` for CycleGAN models.

``Translator`` pairs a loaded backend with what every backend shares around an
image-to-image network: matching the image's channels to the model's (grey,
grey+alpha, RGB, RGBA in; the model's 1 or 3 out), padding each side up to a
size the ResNet can take (a multiple of 4, at least 8) by reflection, and
cropping the result back, so every image comes out the size it went in::

    translator = Translator.open(Path("runs/horse2zebra"), direction="a2b")
    zebras = translator.translate(horses)   # uint8 N×H×W×C in, uint8 N×H×W×3 out

Each image is translated independently of the others in its batch (the
network normalises per image), so the batch size never changes the output.
numpy only here: the onnxruntime path never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gantool.errors import UsageError
from gantool.images import from_uint8, to_uint8
from gantool.runtime.loaded import LoadedModel
from gantool.spec import MIN_SIDE, SIZE_MULTIPLE, ModelSpec

LUMA = np.array([299, 587, 114], dtype=np.uint32)  # ITU-R 601-2, the weights Pillow's convert("L") uses


class Translator(LoadedModel):
    """A CycleGAN generator (one direction) ready to translate images on one backend."""

    @classmethod
    def check_kind(cls, spec: ModelSpec, artifact: Path | None) -> None:
        require_translator(spec, artifact)

    @property
    def direction(self) -> str | None:
        """``a2b`` or ``b2a`` as recorded in the model's spec."""
        return self.spec.direction

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """One uint8 H×W×C image (C 1–4) → float32 C×H'×W' network input, H'×W' = padded_size(H, W)."""
        spec = self.spec
        pixels = match_channels(pixels, spec.channels)
        height, width = pixels.shape[:2]
        padded_height, padded_width = padded_size(height, width)
        padded = np.pad(pixels, ((0, padded_height - height), (0, padded_width - width), (0, 0)), mode="reflect")
        return from_uint8(padded[None], spec.value_range)[0]

    def finish(self, output: np.ndarray, height: int, width: int) -> np.ndarray:
        """One float32 C×H'×W' network output → uint8 height×width×C, the padding cropped off."""
        return to_uint8(output[None, :, :height, :width], self.spec.value_range)[0]

    def translate(self, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """uint8 N×H×W×C images (C = 1, 2, 3 or 4; N×H×W for grey) → uint8 N×H×W×``spec.channels``.

        Images keep their size; resize them beforehand to run the model at its
        native size (``spec.height``×``spec.width``), as ``gantool translate`` does by default.
        """
        if batch_size < 1:
            raise UsageError(f"batch_size must be ≥ 1, got {batch_size}")
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise UsageError(f"expected uint8 images N×H×W×C, got {images.dtype} {images.shape}")
        count, height, width = images.shape[:3]
        out = np.empty((count, height, width, self.spec.channels), dtype=np.uint8)
        for start in range(0, count, batch_size):
            batch = np.stack([self.prepare(image) for image in images[start : start + batch_size]])
            for offset, output in enumerate(self._backend.run(batch)):
                out[start + offset] = self.finish(output, height, width)
        return out


def require_translator(spec: ModelSpec, artifact: Path | None) -> None:
    """A GAN generator given where a translator is needed: say which command it belongs to."""
    if spec.latent_dim is not None:
        raise UsageError(
            f"{artifact} is a GAN generator: it samples from noise, it cannot translate: use gantool generate"
        )


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size a height×width image is padded to: each side up to a multiple of 4, at least 8."""

    def side(length: int) -> int:
        return max(MIN_SIDE, -(-length // SIZE_MULTIPLE) * SIZE_MULTIPLE)

    return side(height), side(width)


def check_size(size: int, what: str = "--size") -> None:
    """A fixed translation size must be one the network takes as is (UsageError, exit 2, otherwise)."""
    if size < MIN_SIDE or size % SIZE_MULTIPLE:
        raise UsageError(f"{what} must be a multiple of {SIZE_MULTIPLE} and at least {MIN_SIDE}, got {size}")


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """uint8 H×W×C with C = 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) → H×W×``channels`` (1 or 3).

    Alpha is dropped, as Pillow's ``convert`` (and so gantool's training data) does; grey becomes
    RGB by repetition, RGB becomes grey by ITU-R 601-2 luma.
    """
    have = pixels.shape[2]
    if have not in (1, 2, 3, 4) or channels not in (1, 3):
        raise UsageError(f"cannot convert {have}-channel images for a {channels}-channel model")
    colour = pixels[:, :, :3] if have >= 3 else pixels[:, :, :1]
    if colour.shape[2] == channels:
        return colour
    if channels == 3:
        return np.repeat(colour, 3, axis=2)
    luma = (colour.astype(np.uint32) @ LUMA + 500) // 1000  # rounded like Pillow
    return luma.astype(np.uint8)[:, :, None]
