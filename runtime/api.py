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
    model: Path, backend: str = registry.AUTO, device: str = "cpu", direction: str | None = None
) -> Generator | Translator:
    """MODEL (run dir, checkpoint or .onnx) loaded on ``backend``; ``direction`` picks a CycleGAN run's generator."""
    name, reason = registry.choose(model, backend, direction)
    runner = registry.create(name, model, device, direction)
    if runner.spec.latent_dim is None:
        return Translator(runner, reason)
    return Generator(runner, reason)
