"""``gantool bench``: latency and throughput per backend × precision × batch size, as a table and as JSON.

Each backend loads its own artifact for MODEL (torch the checkpoint,
onnxruntime the exported ONNX, tensorrt the engine) on ``--device`` (auto:
the GPU when that backend can use one here) at each of ``--precisions`` it
has (default: its own), and is timed on the same input batches:
latents for a GAN, random images in the model's value range for a CycleGAN
translator. A translator takes any size whose sides are multiples of 4, so
``--sizes`` times it at several (default: its native training size); a GAN's
output size is fixed, so ``--sizes`` is refused for one (a usage error rather
than a silently ignored flag). In a CycleGAN run dir ``--direction`` picks the
translator (a2b by default). Every row names its image size.

A backend that is not installed, lacks the precision or device, or cannot
load the model gets a row saying why (one row, size and batch size empty)
instead of stopping the run; a cell
that fails (out of memory, say) gets its own failed row. Timings belong here
and in benchmarks/RESULTS.md, never in pass/fail tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gantool.artifacts import DIRECTIONS
from gantool.benchmarks.options import parse_backends, parse_batch_sizes, parse_image_sizes, parse_precisions
from gantool.benchmarks.report import environment, format_table, size_label
from gantool.errors import ArtifactError, BackendUnavailable, GantoolError, UsageError

if TYPE_CHECKING:
    from gantool.runtime.backends.base import Backend
    from gantool.spec import ModelSpec

INPUT_VARIANTS = 4  # distinct input batches cycled through during timed runs

Size = tuple[int, int]  # (height, width)


def bench(
    model: Annotated[
        Path,
        typer.Argument(
            help="Run dir (torch uses the checkpoint, onnxruntime its ONNX export) or an exported .onnx.",
            show_default=False,
        ),
    ],
    backends: Annotated[
        str, typer.Option(help="Comma-separated backends to compare, or all (every registered backend).")
    ] = "torch,onnxruntime",
    device: Annotated[
        str,
        typer.Option(help="auto, cpu or cuda. auto: each backend on the GPU when it can use one here, else the CPU."),
    ] = "auto",
    precisions: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated precisions, e.g. fp32,fp16: each backend × each; a backend without one gets a row "
            "saying so (default: each backend's own).",
            show_default=False,
        ),
    ] = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,64,256",
    warmup_s: Annotated[
        float, typer.Option(min=0.0, help="Untimed warm-up per cell, seconds (at least one run).")
    ] = 0.5,
    min_runs: Annotated[int, typer.Option(min=1, help="Timed runs per cell, at least.")] = 10,
    max_s: Annotated[
        float, typer.Option(min=0.0, help="Time budget per cell, seconds (exceeded only to reach --min-runs).")
    ] = 2.0,
    sizes: Annotated[
        str | None,
        typer.Option(
            help="Translators only: comma-separated image sizes, 256 or HxW like 192x256; sides multiples of 4, "
            "at least 8 (default: the model's native size).",
            show_default=False,
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(help="CycleGAN run dir: which translator to time, a2b or b2a (default: a2b).", show_default=False),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also save rows, settings and the environment as JSON.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --json file.")] = False,
) -> None:
    """Time each backend (at each precision) on each batch size: latency p50/p90/p99 and mean, images/s.

    A CycleGAN translator is timed on random images in its value range at its
    native size, or at each of --sizes; in a CycleGAN run dir --direction picks
    the translator (a2b by default). A GAN's output size is fixed: --sizes is
    refused for one.
    """
    from gantool.files import check_output_path

    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    from gantool.runtime.registry import check_device

    names = parse_backends(backends)
    check_device(device, "--device")
    wanted_precisions = None if precisions is None else parse_precisions(precisions)
    batches = parse_batch_sizes(batch_sizes)
    image_sizes = None if sizes is None else parse_image_sizes(sizes)
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if json_path is not None:
        check_output_path(json_path, force, "--json file")
    _refuse_translator_options_for_a_gan(_peek_spec(model, names), image_sizes, direction, model)  # before any load
    plan = Plan(batches, image_sizes, direction, warmup_s, min_runs, max_s, device, wanted_precisions)
    settings = {"backends": names, **asdict(plan)}  # sizes as [[height, width], ...] in the JSON
    rows, spec, loaded = _run_all(model, names, plan)
    typer.echo(format_table(rows))
    if json_path is not None:
        from gantool.files import atomic_write_text

        report = {
            "model": str(model),
            "spec": spec,
            "settings": settings,
            "environment": _environment(loaded, rows),
            "rows": rows,
        }
        atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
        typer.echo(f"saved {json_path}", err=True)
    if not any(row["status"] == "ok" for row in rows):
        raise GantoolError(f"no backend could run {model} (see the notes above)")


def _peek_spec(model: Path, names: list[str]) -> ModelSpec | None:
    """The model's spec from the first installed backend's artifact header (no torch, no onnxruntime import).

    Read without a direction: only the kind of model matters here (GAN or
    translator), and a CycleGAN run's a2b file tells it. None when no artifact
    could be read this way: the backends then say why in their rows.
    """
    from gantool.runtime import registry

    for name in names:
        backend = registry.backend_class(name)
        if not backend.availability().ok:
            continue
        try:
            spec = backend.peek_spec(backend.resolve(model))
        except GantoolError:
            continue
        if spec is not None:
            return spec
    return None


def _refuse_translator_options_for_a_gan(
    spec: ModelSpec | None, image_sizes: list[Size] | None, direction: str | None, model: Path
) -> None:
    """--sizes and --direction mean nothing for a GAN: say so (exit 2) rather than time something else."""
    if spec is None or spec.latent_dim is None:
        return
    if image_sizes is not None:
        raise UsageError(
            f"--sizes applies to translators only: {model} is a GAN generator "
            f"with a fixed {spec.height}x{spec.width} output"
        )
    if direction is not None:
        raise UsageError(f"--direction applies to CycleGAN translators only: {model} is a GAN generator")


@dataclass(frozen=True)
class Plan:
    """What to time for each loaded backend: image sizes × batch sizes, and the timing budget per cell."""

    batch_sizes: list[int]
    sizes: list[Size] | None  # None: the model's own size
    direction: str | None
    warmup_s: float
    min_runs: int
    max_s: float
    device: str  # auto: each backend's own choice (registry.default_device)
    precisions: list[str] | None  # None: each backend's default

    def sizes_for(self, spec: ModelSpec) -> list[Size]:
        """A GAN's one output size; a translator's requested sizes, or its native one."""
        if spec.latent_dim is None and self.sizes is not None:
            return self.sizes
        return [(spec.height, spec.width)]


def _run_all(
    model: Path, names: list[str], plan: Plan
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[str]]:
    """All rows, the spec of the first model loaded, and the backends that loaded."""
    from gantool.runtime import gpu, registry

    rows: list[dict[str, Any]] = []
    spec: dict[str, Any] | None = None
    loaded: list[str] = []
    scan = gpu.scan() if plan.device == "auto" else None
    for name in names:
        backend_class = registry.backend_class(name)
        device = plan.device if plan.device != "auto" else registry.default_device(name, scan)
        for precision in plan.precisions or [backend_class.precisions[0]]:
            backend = _load(model, name, device, precision, plan, rows)
            if backend is None:
                continue
            _refuse_translator_options_for_a_gan(backend.spec, plan.sizes, None, model)  # if no header could tell
            loaded.append(name)
            spec = spec or backend.spec.to_dict()
            rows += _time_backend(backend, plan)
    return rows, spec, loaded


def _load(
    model: Path, name: str, device: str, precision: str, plan: Plan, rows: list[dict[str, Any]]
) -> Backend | None:
    """Backend ``name`` loaded for MODEL on ``device`` at ``precision``; None (and a row saying why) if it cannot be."""
    from gantool.runtime import registry

    backend_class = registry.backend_class(name)
    if precision not in backend_class.precisions:
        why = f"{name} runs {', '.join(backend_class.precisions)} only"
        rows.append(_row(name, device, precision, None, None, "unsupported", why))
        return None
    if device not in backend_class.devices:
        why = f"{name} runs on {', '.join(backend_class.devices)} only"
        rows.append(_row(name, device, precision, None, None, "unsupported", why))
        return None
    try:
        backend = backend_class(device, precision)
    except UsageError as exc:  # a combination the backend refuses, e.g. torch fp16 on the CPU
        rows.append(_row(name, device, precision, None, None, "unsupported", str(exc)))
        return None
    try:
        backend.load(model, plan.direction)
    except UsageError:  # e.g. --direction for a GAN: the same for every backend, so not a row
        raise
    except GantoolError as exc:
        status = "unavailable" if isinstance(exc, BackendUnavailable) else "failed"
        rows.append(_row(name, device, precision, None, None, status, str(exc)))
        return None
    except Exception as exc:  # noqa: BLE001 -- a crashing engine is a row in the table, not the end of the run
        rows.append(_row(name, device, precision, None, None, "failed", f"{type(exc).__name__}: {_first_line(exc)}"))
        return None
    return backend


def _time_backend(backend: Backend, plan: Plan) -> list[dict[str, Any]]:
    """One row per image size × batch size for a loaded backend."""
    from gantool.timing import summarize, time_runs

    rows = []
    name, device, precision = backend.name, backend.device, backend.precision
    for image_size in plan.sizes_for(backend.spec):
        for batch in plan.batch_sizes:
            typer.echo(f"bench: {name} {device} {precision} {size_label(*image_size)} batch {batch}", err=True)
            try:
                inputs = [_input_batch(backend, batch, variant, image_size) for variant in range(INPUT_VARIANTS)]
                timing = time_runs(
                    backend.run, inputs, warmup_s=plan.warmup_s, min_runs=plan.min_runs, max_s=plan.max_s
                )
            except Exception as exc:  # noqa: BLE001 -- e.g. out of memory at a large batch: record it, go on
                error = f"{type(exc).__name__}: {_first_line(exc)}"
                rows.append(_row(name, device, precision, image_size, batch, "failed", error))
                continue
            row = _row(name, device, precision, image_size, batch, "ok", "")
            row.update(summarize(timing.durations, batch, timing.stable).to_dict())
            row["cold_ms"] = timing.cold_s * 1000
            row["artifact"] = str(backend.artifact)
            rows.append(row)
    return rows


def _input_batch(backend: Backend, batch: int, variant: int, image_size: Size) -> Any:
    """Input number ``variant``: latents for a GAN, random images in range at ``image_size`` for a translator."""
    import numpy as np

    from gantool.latents import latent_batch

    spec = backend.spec
    if spec.latent_dim is not None:
        return latent_batch(variant, 0, batch, spec.latent_dim)
    low, high = spec.value_range
    shape = (batch, spec.channels, *image_size)
    return np.random.default_rng(variant).uniform(low, high, shape).astype(np.float32)


def _row(
    name: str,
    device: str,
    precision: str,
    image_size: Size | None,
    batch: int | None,
    status: str,
    error: str,
) -> dict[str, Any]:
    height, width = image_size if image_size is not None else (None, None)
    return {
        "backend": name,
        "device": device,
        "precision": precision,
        "height": height,
        "width": width,
        "batch_size": batch,
        "status": status,
        "error": error,
    }


def _environment(loaded: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The machine and the versions of the engines that ran, plus the GPUs when any row ran on one."""
    from gantool.runtime import gpu, registry

    engines = sorted({module for name in loaded for module in registry.backend_class(name).requires[:1]})
    report = environment(engines)
    if any(row["device"] == "cuda" and row["status"] == "ok" for row in rows):
        report["gpus"] = [found.describe() for found in gpu.scan().gpus]
    return report


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
