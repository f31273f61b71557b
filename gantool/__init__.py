"""gantool: train a GAN, export it, and sample from it fast.

The Python API mirrors the CLI::

    import gantool
    gen = gantool.load("runs/digits", backend="auto")   # device="cuda", precision="fp16" on a GPU
    images = gen.sample(16, seed=0)          # uint8, N×H×W×C
    module = gantool.torch_module("runs/digits")  # the generator as an nn.Module

    translator = gantool.load("runs/digits2colour", direction="a2b")  # a CycleGAN run
    coloured = translator.translate(images)  # uint8 N×H×W×C in, N×H×W×3 out, same H×W

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
    from gantool.runtime.translator import Translator

__all__ = ["__version__", "load", "torch_module"]


def load(
    model: str | Path,
    backend: str = "auto",
    *,
    device: str = "auto",
    precision: str | None = None,
    direction: str | None = None,
    batch_size: int | None = None,
) -> Generator | Translator:
    """Open a run dir, checkpoint, exported ``.onnx`` or TensorRT ``.engine`` on ``backend``.

    ``backend``: auto, torch, torch-compile, onnxruntime, onnxruntime-trt or tensorrt; ``auto`` measures
    the backends that can run the model here (a fresh TensorRT engine, onnxruntime with an ONNX export,
    torch; on the GPU and the CPU) at ``batch_size`` (None: 64 for a GAN, 1 for a translator) and takes
    the fastest, caching the figures per machine and model (``.reason`` says what it picked and why).
    ``device``: auto, cpu or cuda. ``precision``: fp32, fp16, bf16 or int8 (None: the backend's default, fp16 for
    tensorrt). A GAN generator comes back as a ``Generator`` (``.sample(n, seed)``), a CycleGAN
    generator as a ``Translator`` (``.translate(images)``). ``direction`` (a2b | b2a) picks the generator
    of a CycleGAN run dir; a2b when not given.
    """
    from gantool.runtime.api import load_model

    return load_model(
        Path(model), backend, device=device, precision=precision, direction=direction, batch_size=batch_size
    )


def torch_module(model: str | Path) -> nn.Module:
    """The generator of a run dir or checkpoint as an ``nn.Module`` in eval mode, for custom code."""
    from gantool.artifacts import resolve_checkpoint
    from gantool.checkpoint import load_generator

    module, _ = load_generator(resolve_checkpoint(Path(model)))
    return module
