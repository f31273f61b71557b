"""What one request may ask of the server, checked before any work.

Triton itself refuses a wrong dtype, rank or fixed dimension, a batch over
``max_batch_size``, an unknown model or output and a body it cannot parse.
What it cannot know is left to these checks: values (a negative seed or index,
non-finite latents), the sides of a translator's images (its dimensions are
``-1`` in the config) and the bytes a request carries.

Triton batches only requests whose inputs have the same shape, so a request
refused for its image sides never shares an execution with a good one; a
request refused for its values or bytes fails the execution it was batched
into, and every request of that execution gets the error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_SIDE = 1024
DEFAULT_MAX_REQUEST_MB = 64
DEFAULT_QUEUE_DELAY_US = 500


class RequestError(ValueError):
    """A request the server refuses: its message goes back to the client; the server carries on."""


@dataclass(frozen=True)
class Limits:
    """The request limits ``gantool serve`` enforces (its --max-batch, --max-side and --max-request-mb)."""

    max_batch: int = DEFAULT_MAX_BATCH
    max_side: int = DEFAULT_MAX_SIDE
    max_request_bytes: int = DEFAULT_MAX_REQUEST_MB << 20

    def check_bytes(self, arrays: dict[str, np.ndarray]) -> None:
        """Refuse a request whose inputs together exceed ``max_request_bytes``."""
        total = sum(int(array.nbytes) for array in arrays.values())
        if total > self.max_request_bytes:
            raise RequestError(
                f"request carries {total} bytes of inputs, over the server's limit of {self.max_request_bytes} "
                "(gantool serve --max-request-mb)"
            )

    def check_count(self, count: int, what: str) -> None:
        """Refuse a sample count outside 1..max_batch (a batch over the limit)."""
        if not 1 <= count <= self.max_batch:
            raise RequestError(f"{what} must be in [1, {self.max_batch}] (gantool serve --max-batch), got {count}")

    def check_images(self, images: np.ndarray) -> None:
        """Refuse images that are not uint8 N×H×W×C with C 1–4 and sides in 1..max_side."""
        if images.dtype != np.uint8 or images.ndim != 4:
            raise RequestError(f"images must be uint8 N×H×W×C, got {images.dtype} with shape {list(images.shape)}")
        height, width, channels = images.shape[1:]
        if channels not in (1, 2, 3, 4):
            raise RequestError(f"images must have 1 to 4 channels (grey, grey+alpha, RGB, RGBA), got {channels}")
        if not (1 <= height <= self.max_side and 1 <= width <= self.max_side):
            raise RequestError(
                f"image sides must be in [1, {self.max_side}] (gantool serve --max-side), got {height}×{width}"
            )


def column(request: dict[str, np.ndarray], name: str) -> np.ndarray:
    """An int64 N×1 input as a flat array, checked non-negative (seeds and sample indices)."""
    values = np.asarray(request[name]).reshape(-1)
    if values.dtype != np.int64:
        raise RequestError(f"{name} must be INT64, got {values.dtype}")
    if values.size and int(values.min()) < 0:
        raise RequestError(f"{name} must be ≥ 0, got {int(values.min())}")
    return values
