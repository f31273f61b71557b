"""``gantool bench``: latency and throughput per backend × batch size, as a table and as JSON.

Each backend loads its own artifact for MODEL (torch the checkpoint,
onnxruntime the exported ONNX) and is timed on the same latent batches.
Timings belong here and in benchmarks/RESULTS.md, never in pass/fail tests.
A backend that is not installed or cannot load the model gets a row saying
why (one row, batch size empty) instead of stopping the run; a batch size that
fails (out of memory, say) gets its own failed row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from gantool.errors import ArtifactError, BackendUnavailable, GantoolError, UsageError

INPUT_VARIANTS = 4  # distinct input batches cycled through during timed runs
# Distributions that provide each package (onnxruntime-gpu installs the same module as onnxruntime).
DISTRIBUTIONS = {
    "gantool": ("gantool",),
    "numpy": ("numpy",),
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
}
COLUMNS = ("backend", "device", "batch", "runs", "mean ms", "p50 ms", "p90 ms", "p99 ms", "images/s", "note")


def bench(
    model: Annotated[
        Path,
        typer.Argument(
            help="Run dir (torch uses the checkpoint, onnxruntime its ONNX export) or an exported .onnx.",
            show_default=False,
        ),
    ],
    backends: Annotated[str, typer.Option(help="Comma-separated backends to compare.")] = "torch,onnxruntime",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,64,256",
    warmup_s: Annotated[
        float, typer.Option(min=0.0, help="Untimed warm-up per cell, seconds (at least one run).")
    ] = 0.5,
    min_runs: Annotated[int, typer.Option(min=1, help="Timed runs per cell, at least.")] = 10,
    max_s: Annotated[
        float, typer.Option(min=0.0, help="Time budget per cell, seconds (exceeded only to reach --min-runs).")
    ] = 2.0,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also save rows, settings and the environment as JSON.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --json file.")] = False,
) -> None:
    """Time each backend on each batch size: latency p50/p90/p99 and mean, throughput in images/s."""
    from gantool.files import check_output_path

    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    names = _parse_backends(backends)
    sizes = _parse_sizes(batch_sizes)
    if json_path is not None:
        check_output_path(json_path, force, "--json file")
    settings = {"backends": names, "batch_sizes": sizes, "warmup_s": warmup_s, "min_runs": min_runs, "max_s": max_s}
    rows, spec, loaded = _run_all(model, names, sizes, warmup_s, min_runs, max_s)
    typer.echo(format_table(rows))
    if json_path is not None:
        from gantool.files import atomic_write_text

        report = {
            "model": str(model),
            "spec": spec,
            "settings": settings,
            "environment": environment(loaded),
            "rows": rows,
        }
        atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
        typer.echo(f"saved {json_path}", err=True)
    if not any(row["status"] == "ok" for row in rows):
        raise GantoolError(f"no backend could run {model} (see the notes above)")


def _parse_backends(text: str) -> list[str]:
    from gantool.runtime import registry

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--backends is empty")
    for name in names:
        if name not in registry.BACKENDS:
            raise UsageError(f"unknown backend {name!r} in --backends; choose from: {', '.join(registry.BACKENDS)}")
    return list(dict.fromkeys(names))


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--batch-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise UsageError(f"--batch-sizes must be integers ≥ 1, got {text!r}")
    return list(dict.fromkeys(sizes))


def _run_all(
    model: Path, names: list[str], sizes: list[int], warmup_s: float, min_runs: int, max_s: float
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[str]]:
    """All rows, the spec of the first model loaded, and the backends that loaded."""
    from gantool.benchmarks.timing import summarize, time_runs
    from gantool.runtime import registry

    rows: list[dict[str, Any]] = []
    spec: dict[str, Any] | None = None
    loaded: list[str] = []
    for name in names:
        try:
            backend = registry.create(name, model)
        except GantoolError as exc:
            status = "unavailable" if isinstance(exc, BackendUnavailable) else "failed"
            rows.append(_row(name, "", None, status, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 -- a crashing engine is a row in the table, not the end of the run
            rows.append(_row(name, "", None, "failed", f"{type(exc).__name__}: {_first_line(exc)}"))
            continue
        loaded.append(name)
        spec = spec or backend.spec.to_dict()
        for size in sizes:
            typer.echo(f"bench: {name} batch {size}", err=True)
            try:
                inputs = [_input_batch(backend, size, variant) for variant in range(INPUT_VARIANTS)]
                durations = time_runs(backend.run, inputs, warmup_s=warmup_s, min_runs=min_runs, max_s=max_s)
            except Exception as exc:  # noqa: BLE001 -- e.g. out of memory at a large batch: record it, go on
                rows.append(_row(name, backend.device, size, "failed", f"{type(exc).__name__}: {_first_line(exc)}"))
                continue
            row = _row(name, backend.device, size, "ok", "")
            row.update(summarize(durations, size).to_dict())
            row["artifact"] = str(backend.artifact)
            rows.append(row)
    return rows, spec, loaded


def _input_batch(backend: Any, size: int, variant: int) -> Any:
    """Input number ``variant`` for a batch: latents for a GAN, random images in range for a translator."""
    import numpy as np

    from gantool.latents import latent_batch

    spec = backend.spec
    if spec.latent_dim is not None:
        return latent_batch(variant, 0, size, spec.latent_dim)
    low, high = spec.value_range
    return np.random.default_rng(variant).uniform(low, high, backend.input_shape(size)).astype(np.float32)


def _row(name: str, device: str, size: int | None, status: str, error: str) -> dict[str, Any]:
    return {"backend": name, "device": device, "batch_size": size, "status": status, "error": error}


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a plain fixed-width table (no colours, no box drawing), easy to paste and to grep."""
    lines = [list(COLUMNS)]
    for row in rows:
        if row["status"] == "ok":
            numbers = [
                f"{row['runs']}",
                *(f"{row[k]:.3f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms")),
                f"{row['images_per_s']:.1f}",
            ]
            note = ""
        else:
            numbers = ["-"] * 6
            note = f"{row['status']}: {row['error']}"
        size = "-" if row["batch_size"] is None else str(row["batch_size"])
        lines.append([row["backend"], row["device"] or "-", size, *numbers, note])
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell.rjust(w) if 2 <= i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        + ("  " + line[-1] if line[-1] else "")
        for line in lines
    ).rstrip()


def environment(loaded: list[str]) -> dict[str, Any]:
    """Machine and versions; a backend's library version only if that backend ran (versions read without importing)."""
    import importlib.metadata
    import platform

    packages = ["gantool", "numpy"] + [name for name in ("torch", "onnxruntime") if name in loaded]
    versions: dict[str, str | None] = {}
    for package in packages:
        versions[package] = None
        for distribution in DISTRIBUTIONS[package]:
            try:
                versions[package] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _cpu_model() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
