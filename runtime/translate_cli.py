"""``gantool translate``: run a CycleGAN generator over image files, one PNG out per image in.

Like ``generate``, this module imports only typer and the standard library at
the top; numpy, Pillow, the backends and rich load inside the command, and the
onnxruntime path never imports torch or onnx.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gantool.runtime.cli import BACKEND_HELP, DEVICE_HELP, PRECISION_HELP
from gantool.runtime.shards import shard_help
from gantool.spec import MAX_IMAGE_SIDE, SIZE_MULTIPLE

if TYPE_CHECKING:
    from gantool.spec import ModelSpec

MAX_LISTED = 5  # failed inputs named in the final summary; each was also reported as it happened


def translate(
    model: Annotated[
        Path,
        typer.Argument(
            help="CycleGAN run dir (--direction picks the generator), .safetensors checkpoint, exported .onnx file "
            "or TensorRT .engine.",
            show_default=False,
        ),
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders (searched recursively) or glob patterns such as 'photos/*.jpg'.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the results: <name>.png per input; files found in a folder INPUT keep their sub-path.",
            show_default=False,
        ),
    ],
    direction: Annotated[
        str | None,
        typer.Option(
            help="a2b or b2a: which generator of a CycleGAN run dir to use (default a2b). "
            "A checkpoint or ONNX file is one direction already.",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    precision: Annotated[str | None, typer.Option(help=PRECISION_HELP, show_default=False)] = None,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", "-b", min=1, help="Images of equal size per forward pass; does not change them."),
    ] = 8,
    size: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_IMAGE_SIDE,
            help="Resize every image to SIZE×SIZE (a multiple of 4, at least 8) and write it at that size. "
            "Default: the model's native size (the size it was trained at).",
            show_default=False,
        ),
    ] = None,
    keep_size: Annotated[
        bool,
        typer.Option(
            "--keep-size",
            help="Translate each image at its own size (padded by reflection to a multiple of 4, cropped back).",
        ),
    ] = False,
    round_size: Annotated[
        bool,
        typer.Option(
            "--round-size",
            help="Resize each image to its own size rounded to a multiple of 4 (bicubic) and write it at that size, "
            "as pytorch-CycleGAN-and-pix2pix's --preprocess none does.",
        ),
    ] = False,
    exif: Annotated[
        bool,
        typer.Option(
            "--exif/--no-exif",
            help="Turn photos upright by their EXIF orientation tag first; --no-exif ignores the tag, as "
            "pytorch-CycleGAN-and-pix2pix does.",
        ),
    ] = True,
    reduced_jpeg: Annotated[
        bool,
        typer.Option(
            "--reduced-jpeg",
            help="Decode JPEGs at 1/2, 1/4 or 1/8 scale when shrinking them that much (faster on large photos; the "
            "pixels differ from a full decode's, see the README).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing output folder (only once the new one is complete).")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run into the same --out folder: inputs whose output is already there are "
            "skipped, the rest translated.",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(metavar="K/M", help=shard_help("the inputs, sorted by output name"), show_default=False),
    ] = None,
) -> None:
    """Translate images with a CycleGAN generator: one PNG per input, written under the input's name.

    By default each image is read as CycleGAN's own test script reads it
    (Pillow's convert('RGB'), a bicubic resize of the full decode to the model's
    native size), so the outputs are its pixels; the one deliberate difference
    is the EXIF orientation, applied unless --no-exif. --size S resizes to S×S
    instead, --keep-size keeps each image's size, --round-size rounds it to a
    multiple of 4. Grey, palette and RGBA images are converted to the model's
    channels (alpha is dropped).

    A file that cannot be read is reported and skipped; every other image is
    still written, and the command then exits with status 1. Each output is
    written whole: after Ctrl-C, SIGTERM or a full disk, the same command with
    --resume translates only the inputs whose output is missing. With --shard K/M
    it translates only shard K of the inputs sorted by output name.
    """
    from gantool.artifacts import DIRECTIONS
    from gantool.errors import GantoolError, Interrupted, UsageError
    from gantool.files import DiskFull, check_output_path
    from gantool.runtime.image_io import MANIFEST, Decoding, collect_inputs
    from gantool.runtime.interrupts import command_line
    from gantool.runtime.memory import batch_memory
    from gantool.runtime.output_folder import OutputFolder
    from gantool.runtime.progress import Progress
    from gantool.runtime.registry import check_device, check_precision
    from gantool.runtime.shards import Shard
    from gantool.runtime.translate_pipeline import Skipped, translate_files
    from gantool.runtime.translator import Translator, check_size
    from gantool.signals import StopSignals

    part = Shard.parse(shard) if shard is not None else None
    name = None if part is None else str(part)  # as the manifest records it: "2/4"
    check_device(device, "--device")
    check_precision(precision, "--precision")
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    chosen = {"--size": size is not None, "--keep-size": keep_size, "--round-size": round_size}
    sizing = [flag for flag, on in chosen.items() if on]
    if len(sizing) > 1:
        raise UsageError(f"{' and '.join(sizing)} exclude each other: pick one")
    if reduced_jpeg and (keep_size or round_size):
        raise UsageError("--reduced-jpeg only helps when images are shrunk: it needs the native size or --size")
    if size is not None:
        check_size(size)
    if resume and force:
        raise UsageError(
            "--resume and --force exclude each other: --resume keeps what --out holds, --force replaces it"
        )
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: translate writes a folder of PNGs")
    check_output_path(out, force or resume, "output folder")
    sources = collect_inputs(inputs, exclude=out)
    total = len(sources)
    if part is not None:  # the same order on every machine, whatever order the arguments or file systems give
        sources = sorted(sources, key=lambda source: source.output.as_posix())[slice(*part.range(total))]
        if not sources:  # an array task with nothing to do succeeds: the job is not failed
            typer.echo(part.describe(total, "inputs"), err=True)
            return
    options = {"--out": out, "--direction": direction, "--backend": backend, "--device": device}
    options |= {"--precision": precision, "--batch-size": batch_size, "--size": size, "--keep-size": keep_size}
    options |= {"--round-size": round_size, "--no-exif": not exif, "--reduced-jpeg": reduced_jpeg, "--shard": name}
    again = command_line("translate", [str(model), *map(str, inputs)], options | {"--resume": True})

    with batch_memory(batch_size):
        loaded = time.perf_counter()
        translator = Translator.open(
            model, backend, device=device, precision=precision, direction=direction, batch_size=batch_size
        )
        loaded = time.perf_counter() - loaded
        spec = translator.spec
        own_size = keep_size or round_size
        target = None if own_size else (size, size) if size is not None else (spec.height, spec.width)
        decoding = Decoding(target, SIZE_MULTIPLE if round_size else None, exif, reduced_jpeg)
        typer.echo(f"backend: {translator.reason}; {_label(spec)} at {decoding.describe()}", err=True)

        written = [0]  # counted as files land (writer threads), so an interrupted run still knows
        settings: dict[str, object] = {**translator.identity(model), "direction": spec.direction}
        settings |= {"decoding": asdict(decoding), "shard": name}
        if part is not None:  # a changed input list moves the range: resuming it would mix two splits
            settings |= {"shard_inputs": total, "shard_range": list(part.range(total))}
        folder = OutputFolder(out, force=force, resume=resume, manifest=(MANIFEST, settings))
        with StopSignals(repeat_stops_now=True) as stop:
            try:
                with folder, Progress(len(sources), "translating") as bar:
                    todo = [s for s in sources if not (folder.root / s.output).exists()] if resume else sources
                    bar.advance(len(sources) - len(todo))

                    def on_written(count: int) -> None:
                        written[0] += count
                        bar.advance(count)

                    def skipped(item: Skipped) -> None:
                        bar.log(f"skipped {item.source.path}: {item.reason}")
                        bar.advance(1)  # done with, if not written: the bar still ends full

                    outcome = translate_files(
                        translator, todo, folder.root, decoding=decoding, batch_size=batch_size,
                        on_written=on_written, on_skipped=skipped, stop=lambda: stop.requested,
                    )  # fmt: skip
                    if outcome.stopped:
                        raise KeyboardInterrupt
                    if todo and outcome.written == 0:  # leaves no empty folder behind
                        raise GantoolError(f"none of the {len(todo)} inputs could be read; nothing written")
            except KeyboardInterrupt:
                if not folder.keeps_partial:
                    message = f"nothing written, {out} left as it was"
                else:
                    message = f"wrote {written[0]} images; outputs in {out} are complete; resume with: {again}"
                raise Interrupted(f"stopped by {stop.describe()}: {message}", stop.exit_code) from None
            except DiskFull as exc:
                if not folder.keeps_partial:
                    raise
                raise GantoolError(f"{exc}; free some space, then: {again}") from None
    existing = len(sources) - len(todo)
    rate = outcome.written / max(outcome.seconds, 1e-9)
    which = "" if part is None else f" ({part.describe(total, 'inputs')})"
    typer.echo(
        f"wrote {outcome.written} images{which} to {out} (skipped {existing} already complete, {len(outcome.skipped)} "
        f"failed) in {outcome.seconds:.2f} s ({rate:.1f} images/s, {translator.backend} on {translator.device}, "
        f"{translator.precision}, batch {batch_size}; model load {loaded:.2f} s)",
        err=True,
    )
    if outcome.skipped:
        names = [str(item.source.path) for item in outcome.skipped]
        more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
        raise GantoolError(
            f"{len(names)} of {len(todo)} inputs could not be read and were skipped: "
            f"{', '.join(names[:MAX_LISTED])}{more}"
        )


def _label(spec: ModelSpec) -> str:
    """``cyclegan a2b (horses → zebras)`` from the spec's direction and domain names, when it has them."""
    if spec.direction is None or spec.domains is None:
        return f"{spec.kind} {spec.direction or 'translator'}"
    source, target = spec.domains if spec.direction == "a2b" else spec.domains[::-1]
    return f"{spec.kind} {spec.direction} ({source} → {target})"
