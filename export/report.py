"""The table (or JSON list) ``gantool export`` prints: one row per file written, and one per Triton model."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from gantool.export.int8 import Int8Result
    from gantool.export.onnx_export import ExportResult
    from gantool.export.tensorrt_export import EngineResult


def report(
    results: list[ExportResult], engines: list[EngineResult], trt: bool, json_output: bool,
    repo_rows: list[dict[str, Any]], int8: list[Int8Result] | None = None,
) -> None:  # fmt: skip
    """One row per file: ONNX files (if exported), INT8 files (written or refused), engines, then Triton models.

    An INT8 row has no tolerance: its status is its quality verdict (``ok``, ``FORCED`` past a loss, ``REFUSED``).
    """
    rows: list[dict[str, Any]] = [
        {"path": str(r.path), "precision": r.precision, "max_abs_diff": r.max_abs_diff, "tolerance": r.tolerance,
         "ok": r.ok} | ({"build_seconds": None} if trt else {})
        for r in results
    ] + [
        {"path": str(r.path), "precision": r.precision, "max_abs_diff": r.max_abs_diff, "tolerance": None,
         "ok": r.ok, "written": r.ok, "status": _int8_status(r), "verdict": r.verdict, "kept_float": r.kept_float,
         "calibration": r.calibration} | ({"layers": r.layers} if r.layers else {})
        | ({"build_seconds": None} if trt else {})
        for r in int8 or []
    ] + [
        {"path": str(e.path), "precision": e.precision, "max_abs_diff": e.max_abs_diff,
         "tolerance": e.tolerance if e.tolerance != float("inf") else None,  # INT8: the verdict decides
         "ok": e.ok, "build_seconds": round(e.build_seconds, 2)}
        for e in engines
    ] + [row | ({"build_seconds": None} if trt else {}) for row in repo_rows]  # fmt: skip
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    header = ("file", "precision", "max abs diff", "tolerance", "status") + (("build s",) if trt else ())
    table = [header] + [
        (row["path"], row["precision"], number(row["max_abs_diff"], ".1e"), number(row["tolerance"], ".0e"),
         row.get("status") or ("ok" if row["ok"] else "FAIL"))
        + ((("-" if row["build_seconds"] is None else f"{row['build_seconds']:.1f}"),) if trt else ())
        for row in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _int8_status(result: Int8Result) -> str:
    if not result.ok:
        return "REFUSED"
    return "FORCED" if result.verdict.get("forced") else "ok"


def number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
