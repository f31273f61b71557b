"""``gantool.load``: one entry point that opens whichever kind of model MODEL holds.

A GAN generator comes back as a ``Generator`` (``.sample``), a CycleGAN
generator as a ``Translator`` (``.translate``). The kind is read from the
artifact's spec, so the caller does not need to know it in advance.
"""

from __future__ import annotations

from pathlib import Path

from gantool.runtime import registry
from gantool.runtime.generator import Generator
from gantool.runtime.translator import Translator


def load_model(
    model: Path,
    backend: str = registry.AUTO,
    *,
    device: str = registry.AUTO,
    precision: str | None = None,
    direction: str | None = None,
    batch_size: int | None = None,
) -> Generator | Translator:
    """MODEL (run dir, checkpoint, .onnx or .engine) loaded on ``backend``, ``device`` and ``precision``.

    See ``registry.choose`` for what ``auto`` picks (the fastest here at ``batch_size``, None: a
    representative one); ``direction`` picks a CycleGAN run's generator.
    """
    choice = registry.choose(model, backend, direction, device, precision, batch_size)
    runner = choice.backend or registry.create(choice.name, model, choice.device, direction, choice.precision)
    if runner.spec.latent_dim is None:
        return Translator(runner, choice.reason)
    return Generator(runner, choice.reason)
