"""gantool: train a GAN, export it, and sample from it fast.

The Python API mirrors the CLI::

    import gantool
    gen = gantool.load("runs/digits", backend="auto")
    images = gen.sample(16, seed=0)          # uint8, N×H×W×C
    module = gantool.torch_module("runs/digits")  # the generator as an nn.Module

Importing gantool is cheap: torch is loaded only when a torch backend or
``torch_module`` is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from torch import nn

    from gantool.runtime.generator import Generator

__all__ = ["__version__", "load", "torch_module"]


def load(model: str | Path, backend: str = "auto") -> Generator:
    """Open a run dir, checkpoint or exported model for sampling on ``backend``."""
    from gantool.runtime.generator import Generator

    return Generator.open(Path(model), backend=backend)


def torch_module(model: str | Path) -> nn.Module:
    """The generator of a run dir or checkpoint as an ``nn.Module`` in eval mode, for custom code."""
    from gantool.artifacts import resolve_checkpoint
    from gantool.checkpoint import load_generator

    module, _ = load_generator(resolve_checkpoint(Path(model)))
    return module
