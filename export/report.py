"""The table (or JSON list) ``gantool export`` prints: one row per file written, and one per Triton model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from gantool.export.onnx_export import ExportResult
    from gantool.export.tensorrt_export import EngineResult


def report(
    results: list[ExportResult], engines: list[EngineResult], trt: bool, json_output: bool,
    repo_rows: list[dict[str, Any]],
) -> None:  # fmt: skip
    """One row per file written: ONNX files (if exported), engines with their build time, then Triton models."""
    rows: list[dict[str, Any]] = [
        {"path": str(r.path), "precision": r.precision, "max_abs_diff": r.max_abs_diff, "tolerance": r.tolerance,
         "ok": r.ok} | ({"build_seconds": None} if trt else {})
        for r in results
    ] + [
        {"path": str(e.path), "precision": e.precision, "max_abs_diff": e.max_abs_diff, "tolerance": e.tolerance,
         "ok": e.ok, "build_seconds": round(e.build_seconds, 2)}
        for e in engines
    ] + [row | ({"build_seconds": None} if trt else {}) for row in repo_rows]  # fmt: skip
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    header = ("file", "precision", "max abs diff", "tolerance", "status") + (("build s",) if trt else ())
    table = [header] + [
        (row["path"], row["precision"], number(row["max_abs_diff"], ".1e"), number(row["tolerance"], ".0e"),
         "ok" if row["ok"] else "FAIL")
        + ((("-" if row["build_seconds"] is None else f"{row['build_seconds']:.1f}"),) if trt else ())
        for row in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
