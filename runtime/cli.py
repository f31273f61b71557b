"""``gantool generate``: sample N images from a trained or exported generator.

Start-up time is part of the product here (``gantool generate MODEL.onnx``
should beat a plain PyTorch script end to end), so this module imports only
typer and the standard library at the top; numpy, the backends and rich load
inside the command, and the onnxruntime path never imports torch or onnx.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

BACKEND_HELP = (
    "auto, torch, torch-compile, onnxruntime, onnxruntime-trt or tensorrt. auto: the fastest at --batch-size of "
    "those that can run MODEL here (a TensorRT engine, onnxruntime with an ONNX export, torch; GPU and CPU), "
    "measured once per machine and model and cached."
)
DEVICE_HELP = "auto, cpu or cuda. auto: the GPU when the chosen backend can use one here, else the CPU."
PRECISION_HELP = "fp32 or fp16 (default: the backend's own: fp16 for tensorrt and onnxruntime-trt, else fp32)."


def generate(
    model: Annotated[
        Path,
        typer.Argument(
            help="Run dir, .safetensors checkpoint, exported .onnx file or TensorRT .engine.", show_default=False
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="A folder (one PNG per sample), FILE.npz (array 'images' N×H×W×C uint8 + 'seed') or FILE.png (one grid).",
            show_default=False,
        ),
    ],
    n: Annotated[int, typer.Option("-n", "--num", min=1, help="Number of images.")] = 64,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", min=1, help="Images per forward pass; does not change the images.")
    ] = 64,
    seed: Annotated[int, typer.Option(min=0, help="Sample i depends only on (seed, i): same seed, same images.")] = 0,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    precision: Annotated[str | None, typer.Option(help=PRECISION_HELP, show_default=False)] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing output (only once the new one is complete).")
    ] = False,
) -> None:
    """Sample images from a GAN generator, deterministically by seed, on the fastest available backend."""
    from gantool.files import check_output_path
    from gantool.runtime.generator import Generator
    from gantool.runtime.progress import Progress
    from gantool.runtime.registry import check_device, check_precision
    from gantool.runtime.writers import open_writer, output_kind

    check_device(device, "--device")
    check_precision(precision, "--precision")
    output_kind(out)  # refuse an unsupported --out before any work
    check_output_path(out, force, "output")
    loaded = time.perf_counter()
    gen = Generator.open(model, backend, device=device, precision=precision, batch_size=batch_size)
    typer.echo(f"backend: {gen.reason}", err=True)
    loaded = time.perf_counter() - loaded

    start = time.perf_counter()
    with open_writer(out, n, gen.spec, seed, force) as writer, Progress(n, "generating") as bar:
        for first, batch in gen.iter_batches(n, seed, batch_size):
            writer.write(first, batch)
            bar.advance(len(batch))
    seconds = time.perf_counter() - start
    typer.echo(
        f"wrote {n} images to {out} in {seconds:.2f} s ({n / max(seconds, 1e-9):.0f} images/s, "
        f"{gen.backend} on {gen.device}, {gen.precision}; model load {loaded:.2f} s)",
        err=True,
    )
