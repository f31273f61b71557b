"""``gantool generate``: sample N images from a trained or exported generator.

Start-up time is part of the product here (``gantool generate MODEL.onnx``
should beat a plain PyTorch script end to end), so this module imports only
typer and the standard library at the top; numpy, the backends and rich load
inside the command, and the onnxruntime path never imports torch or onnx.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gantool.latents import MAX_SEED
from gantool.runtime.shards import shard_help

if TYPE_CHECKING:
    import numpy as np

    from gantool.runtime.generator import Generator
    from gantool.runtime.writers import Writer

BACKEND_HELP = (
    "auto, torch, torch-compile, onnxruntime, onnxruntime-trt or tensorrt. auto: the fastest at --batch-size of "
    "those that can run MODEL here (a TensorRT engine, onnxruntime with an ONNX export, torch; GPU and CPU), "
    "measured once per machine and model and cached."
)
DEVICE_HELP = "auto, cpu or cuda. auto: the GPU when the chosen backend can use one here, else the CPU."
PRECISION_HELP = (
    "fp32, fp16, bf16 or int8 (default: the backend's own: fp16 for tensorrt and onnxruntime-trt, else fp32). bf16: "
    "the torch backends, on CUDA or on a CPU with AVX-512 BF16 or AMX (gantool doctor says). int8: the files of "
    "gantool export --int8 (onnxruntime, tensorrt); auto also times them when they carry a passing quality verdict."
)


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
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Sample i depends only on (seed, i): same seed, same images.")
    ] = 0,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    precision: Annotated[str | None, typer.Option(help=PRECISION_HELP, show_default=False)] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing output (only once the new one is complete).")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run into the same --out folder: keep the samples already there, write the "
            "rest (same seed, model and -n required).",
        ),
    ] = False,
    shard: Annotated[
        str | None, typer.Option(metavar="K/M", help=shard_help("the -n samples"), show_default=False)
    ] = None,
) -> None:
    """Sample images from a GAN generator, deterministically by seed, on the fastest available backend.

    A folder is filled one complete PNG at a time: after Ctrl-C, SIGTERM or a
    full disk, the same command with --resume writes only what is missing.
    With --shard K/M it writes only shard K's samples, under their global names.
    """
    from gantool.errors import GantoolError, Interrupted, UsageError
    from gantool.files import DiskFull, check_output_path
    from gantool.runtime.generator import Generator
    from gantool.runtime.interrupts import command_line
    from gantool.runtime.memory import batch_memory
    from gantool.runtime.progress import Progress
    from gantool.runtime.registry import check_device, check_precision
    from gantool.runtime.shards import Shard
    from gantool.runtime.writers import open_writer, output_kind
    from gantool.signals import StopSignals

    part = Shard.parse(shard) if shard is not None else None
    check_device(device, "--device")
    check_precision(precision, "--precision")
    kind = output_kind(out)  # refuse an unsupported --out before any work
    if part is not None and kind == "grid":
        raise UsageError(
            f"--shard needs a folder or .npz --out: a .png grid of shard {part} is no part of the whole run's grid"
        )
    if resume and force:
        raise UsageError(
            "--resume and --force exclude each other: --resume keeps what --out holds, --force replaces it"
        )
    if resume and kind != "dir":
        raise UsageError(f"--resume needs a folder --out: {out} is one {kind} file, written whole at the end")
    if resume and out.exists() and not out.is_dir():
        raise UsageError(f"cannot --resume into {out}: it is a file, not a folder of samples")
    samples = range(*part.range(n)) if part is not None else range(n)  # the ones this run writes
    name = None if part is None else str(part)  # as the manifest records it: "2/4"
    if not samples:  # an array task with nothing to do succeeds: the job is not failed
        assert part is not None  # -n is at least 1
        typer.echo(part.describe(n, "samples"), err=True)
        return
    check_output_path(out, force or resume, "output")
    options = {"-n": n, "--seed": seed, "--batch-size": batch_size, "--out": out, "--backend": backend}
    options |= {"--device": device, "--precision": precision, "--shard": name, "--resume": True}
    again = command_line("generate", [str(model)], options)

    with batch_memory(batch_size):
        loaded = time.perf_counter()
        gen = Generator.open(model, backend, device=device, precision=precision, batch_size=batch_size)
        typer.echo(f"backend: {gen.reason}", err=True)
        loaded = time.perf_counter() - loaded
        settings: dict[str, object] = {"seed": seed, **gen.identity(model), "shard": name}
        if part is not None:
            settings["shard_range"] = [samples.start, samples.stop]  # informative: follows from shard and n
        scope = "" if part is None else f" of shard {part}"

        start = time.perf_counter()
        writer: Writer | None = None
        with StopSignals(repeat_stops_now=True) as signals:
            try:
                writer = open_writer(
                    out, n, gen.spec, seed, force, resume=resume, settings=settings, indices=samples, shard=name
                )
                with writer, Progress(len(samples), "generating") as bar:
                    for first in samples[::batch_size]:
                        if signals.requested:
                            raise KeyboardInterrupt
                        count = min(batch_size, samples.stop - first)
                        if writer.pending(first, count):
                            writer.write(first, _batch(gen, seed, first, count))
                        bar.advance(count)
            except KeyboardInterrupt:
                message = _stopped(signals.describe(), writer, len(samples), scope, out, again)
                raise Interrupted(message, signals.exit_code) from None
            except DiskFull as exc:
                if writer is None or not writer.keeps_partial:
                    raise
                kept = _kept(writer, len(samples), scope, out)
                raise GantoolError(f"{exc}; {kept}: free some space, then: {again}") from None
    seconds = time.perf_counter() - start
    assert writer is not None  # the with block opened it
    which = "" if part is None else f" ({part.describe(n, 'samples')})"
    typer.echo(
        f"wrote {writer.written} images{which} to {out} (skipped {writer.skipped} already complete, 0 failed) in "
        f"{seconds:.2f} s ({writer.written / max(seconds, 1e-9):.0f} images/s, {gen.backend} on {gen.device}, "
        f"{gen.precision}; model load {loaded:.2f} s)",
        err=True,
    )


def _batch(gen: Generator, seed: int, first: int, count: int) -> np.ndarray:
    """Samples ``first .. first+count-1`` as uint8 count×H×W×C: the same batches as an uninterrupted run computes."""
    from gantool.images import to_uint8
    from gantool.latents import latent_batch

    spec = gen.spec
    assert spec.latent_dim is not None  # Generator.open refused anything else
    return to_uint8(gen.runner.run(latent_batch(seed, first, count, spec.latent_dim)), spec.value_range)


def _kept(writer: Writer, total: int, scope: str, out: Path) -> str:
    """``120 of 250 samples of shard 2/4 are complete in OUT``: ``total`` and ``scope`` are this run's share."""
    return f"{writer.written + writer.skipped} of {total} samples{scope} are complete in {out}"


def _stopped(signal: str, writer: Writer | None, total: int, scope: str, out: Path, again: str) -> str:
    if writer is None or not writer.keeps_partial:
        return f"stopped by {signal}: nothing written, {out} left as it was"
    kept = _kept(writer, total, scope, out)
    return f"stopped by {signal} after writing {writer.written} images; {kept}; resume with: {again}"
