"""What each served model takes and returns: Triton tensors and the numpy functions behind them.

A GAN is served as three models, so that every request batches with others of its kind:

- ``NAME``: ``seed`` and ``index`` (INT64, one row per sample) → ``images`` (UINT8 H×W×C per row): the
  images ``gantool generate --seed SEED`` writes for those indices, bit for bit on the same backend and batch;
- ``NAME_count``: ``seed``, ``count`` and optionally ``index`` (the first, default 0), unbatched →
  ``images`` (UINT8 count×H×W×C): one whole run of samples in one request;
- ``NAME_latents``: ``latents`` (FP32, Z per row) → ``images``: your own noise.

A translator is one model, ``NAME``: ``images`` (UINT8 N×H×W×C, C 1–4, any sides) → ``images``
(UINT8 N×H×W×C', C' the model's channels, the same sides), as ``gantool translate --keep-size`` does.

Each function gets the requests of one execution (Triton's dynamic batcher may have gathered several),
checks every one (``limits``), runs them through the backend as one batch and splits the result back.
numpy only: the onnxruntime and TensorRT paths never import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gantool.images import to_uint8
from gantool.latents import latent_batch
from gantool.runtime.generator import Generator
from gantool.runtime.serve.limits import Limits, RequestError, column
from gantool.runtime.translator import Translator

Request = Any  # PyTriton's Request: a mapping from input name to numpy array
Infer = Callable[[Sequence[Request]], list[dict[str, np.ndarray]]]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as Triton sees it: shape without the batch dimension; -1 for any length."""

    name: str
    dtype: type[np.generic]
    shape: tuple[int, ...]
    optional: bool = False


@dataclass(frozen=True)
class Endpoint:
    """One Triton model: its tensors, whether Triton batches its requests, and the function answering them."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batched: bool
    infer: Infer
    description: str
    kind: str  # "gan" or "translator": what kind of model it serves


def generator_endpoints(name: str, generator: Generator, limits: Limits) -> list[Endpoint]:
    """The three models a GAN generator is served as (see the module docstring)."""
    spec = generator.spec
    assert spec.latent_dim is not None  # a Generator has latents
    latent_dim = spec.latent_dim
    image = TensorSpec("images", np.uint8, (spec.height, spec.width, spec.channels))

    def run(latents: np.ndarray) -> np.ndarray:  # rows×Z → rows×H×W×C uint8, as generate computes it
        return to_uint8(generator.runner.run(latents), spec.value_range)

    def by_index(requests: Sequence[Request]) -> list[dict[str, np.ndarray]]:
        rows = []
        for request in requests:
            limits.check_bytes(dict(request.items()))
            seeds, indices = column(request, "seed"), column(request, "index")
            if seeds.size != indices.size:
                raise RequestError(f"seed and index need one row each per sample, got {seeds.size} and {indices.size}")
            rows.append(
                np.concatenate([latent_batch(int(s), int(i), 1, latent_dim) for s, i in zip(seeds, indices)])
                if seeds.size
                else np.empty((0, latent_dim), np.float32)
            )
        return _split(run(np.concatenate(rows)), rows)

    def by_count(requests: Sequence[Request]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            seed, count = _scalar(request, "seed"), _scalar(request, "count")
            first = _scalar(request, "index") if "index" in request else 0
            limits.check_count(count, "count")
            answers.append({"images": run(latent_batch(seed, first, count, latent_dim))})
        return answers

    def by_latents(requests: Sequence[Request]) -> list[dict[str, np.ndarray]]:
        rows = []
        for request in requests:
            limits.check_bytes(dict(request.items()))
            latents = np.asarray(request["latents"], dtype=np.float32)
            if not np.isfinite(latents).all():
                raise RequestError("latents must be finite (no NaN or infinity)")
            rows.append(latents)
        return _split(run(np.concatenate(rows)), rows)

    int_row = (1,)
    return [
        Endpoint(
            name, (TensorSpec("seed", np.int64, int_row), TensorSpec("index", np.int64, int_row)), (image,), True,
            by_index, f"seed + index → {_shape(image)} uint8", "gan",
        ),
        Endpoint(
            f"{name}_count",
            (TensorSpec("seed", np.int64, int_row), TensorSpec("count", np.int64, int_row),
             TensorSpec("index", np.int64, int_row, optional=True)),
            (TensorSpec("images", np.uint8, (-1, *image.shape)),), False,
            by_count, f"seed + count [+ first index] → count×{_shape(image)} uint8", "gan",
        ),
        Endpoint(
            f"{name}_latents", (TensorSpec("latents", np.float32, (latent_dim,)),), (image,), True,
            by_latents, f"latents ({latent_dim}) → {_shape(image)} uint8", "gan",
        ),
    ]  # fmt: skip


def translator_endpoints(name: str, translator: Translator, limits: Limits) -> list[Endpoint]:
    """The one model a translator is served as: uint8 images of any size in, the same sides out."""
    channels = translator.spec.channels

    def translate(requests: Sequence[Request]) -> list[dict[str, np.ndarray]]:
        batches = []
        for request in requests:
            limits.check_bytes(dict(request.items()))
            images = np.asarray(request["images"])
            limits.check_images(images)
            batches.append(images)
        if len({batch.shape[1:] for batch in batches}) > 1:  # Triton gathers equal shapes only; in case it did not
            return [{"images": translator.translate(batch, batch_size=len(batch))} for batch in batches]
        everything = np.concatenate(batches)
        return _split(translator.translate(everything, batch_size=max(len(everything), 1)), batches)

    return [
        Endpoint(
            name, (TensorSpec("images", np.uint8, (-1, -1, -1)),), (TensorSpec("images", np.uint8, (-1, -1, channels)),),
            True, translate, f"images H×W×C (C 1-4) → H×W×{channels} uint8", "translator",
        )
    ]  # fmt: skip


def _split(outputs: np.ndarray, parts: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Cut one batch of outputs back into each request's rows."""
    bounds = np.cumsum([len(part) for part in parts])[:-1]
    return [{"images": piece} for piece in np.split(outputs, bounds)]


def _scalar(request: Request, name: str) -> int:
    """An unbatched INT64 input of one element, checked non-negative."""
    values = column(request, name)
    if values.size != 1:
        raise RequestError(f"{name} must hold one value, got {values.size}")
    return int(values[0])


def _shape(tensor: TensorSpec) -> str:
    return "×".join("N" if side == -1 else str(side) for side in tensor.shape)
