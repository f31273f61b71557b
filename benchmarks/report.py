"""What ``gantool bench`` prints, saves and reads back: the table, the environment block, the report files.

Kept apart from the command so the layout, the file formats and their
validation can be read, tested on synthetic rows and reused by scripts
without the timing loop around them. One row per model × backend ×
precision × size × batch size, with the keys of ``ROW_KEYS``; the report
wraps the rows with the command, the settings and the environment (format
``gantool.bench``, version 2) so that two files can be compared.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gantool.errors import ArtifactError

FORMAT = "gantool.bench"
VERSION = 2

# Every key of a row, in the order of the CSV header. Keys after ``artifact`` are None unless status is "ok".
ROW_KEYS = (
    "model", "backend", "device", "precision", "height", "width", "batch_size", "status", "error", "artifact",
    "runs", "stable", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "iqr_ms",
    "images_per_s", "cold_ms", "compute_p50_ms", "compute_images_per_s", "compute_is_end_to_end",
    "peak_rss_mb", "peak_gpu_mb", "flops_per_image", "achieved_gflops", "max_abs_err", "psnr_db",
)  # fmt: skip
REPORT_KEYS = ("format", "version", "created", "command", "models", "settings", "environment", "rows")

# Distributions that provide each package (onnxruntime-gpu installs the same module as onnxruntime).
DISTRIBUTIONS = {
    "numpy": ("numpy",),
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12"),
}


def size_label(height: int | None, width: int | None) -> str:
    """``256x256``; ``-`` for a row that never reached a model (a backend that did not load)."""
    return "-" if height is None or width is None else f"{height}x{width}"


def format_ms(value: float | None) -> str:
    """Three significant digits (0.116, 4.24, 68.8; 1120 whole): finer digits would be noise."""
    if value is None:
        return "-"
    return _significant(value, 3)


def _significant(value: float, digits: int) -> str:
    """``value`` to ``digits`` significant digits in plain notation; whole numbers are never rounded off (1967)."""
    if math.isinf(value) or value == 0:
        return "inf" if math.isinf(value) else "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:.0f}"
    rounded = float(f"{value:.{digits}g}")  # 99.96 → 100.0, so that the decimals below follow the rounded value
    return f"{rounded:.{max(0, digits - 1 - math.floor(math.log10(abs(rounded))))}f}"


def format_spread(value: float | None) -> str:
    """Two significant digits (0.0023, 3.9, 39): a spread says how much to trust the digits of the others."""
    return "-" if value is None else _significant(value, 2)


def format_rate(value: float | None) -> str:
    """Images/s and GFLOP/s: thousands separated from 100 up (122,243), three significant digits below (14.5)."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if not math.isinf(value) and abs(value) >= 100 else format_ms(value)


def _error(row: dict[str, Any]) -> str:
    value = row["max_abs_err"]
    return "-" if value is None else "0" if value == 0 else f"{value:.1e}"


def _psnr(row: dict[str, Any]) -> str:
    value = row["psnr_db"]
    return "-" if value is None else "inf" if math.isinf(value) else f"{value:.1f}"


def _compute(row: dict[str, Any]) -> str:
    return "= e2e" if row["compute_is_end_to_end"] else format_rate(row["compute_images_per_s"])


def _megabytes(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _note(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"{row['status']}: {row['error']}"
    return "" if row["stable"] else "unstable"


# Column → its cell. Cells of measured columns read keys that only "ok" rows fill: other rows show "-" there.
_CELLS: dict[str, Callable[[dict[str, Any]], str]] = {
    "model": lambda row: row["model"],
    "backend": lambda row: row["backend"],
    "device": lambda row: row["device"] or "-",
    "precision": lambda row: row["precision"] or "-",
    "size": lambda row: size_label(row["height"], row["width"]),
    "batch": lambda row: "-" if row["batch_size"] is None else str(row["batch_size"]),
    "runs": lambda row: str(row["runs"]),
    "p50 ms": lambda row: format_ms(row["p50_ms"]),
    "p90 ms": lambda row: format_ms(row["p90_ms"]),
    "p99 ms": lambda row: format_ms(row["p99_ms"]),
    "±IQR ms": lambda row: "±" + format_spread(row["iqr_ms"]),
    "images/s": lambda row: format_rate(row["images_per_s"]),
    "cold ms": lambda row: format_ms(row["cold_ms"]),
    "compute img/s": _compute,
    "RSS MB": lambda row: _megabytes(row["peak_rss_mb"]),
    "GPU MB": lambda row: _megabytes(row["peak_gpu_mb"]),
    "GFLOP/s": lambda row: format_rate(row["achieved_gflops"]),
    "max err": _error,
    "PSNR dB": _psnr,
    "note": _note,
}
COLUMNS = tuple(_CELLS)
TEXT_COLUMNS = frozenset({"model", "backend", "device", "precision", "note"})  # left-aligned; numbers align right
UNITS = frozenset({"ms", "MB", "dB", "img/s"})  # a header's last word that names a unit
_ALWAYS = frozenset({"model", "backend", "device", "precision", "size", "batch", "note"})


def columns_for(rows: list[dict[str, Any]]) -> list[str]:
    """COLUMNS less the model column for a single model and the GPU memory column when no row ran on a GPU."""
    several_models = len({row["model"] for row in rows}) > 1
    any_gpu = any(row.get("peak_gpu_mb") is not None for row in rows)
    return [column for column in COLUMNS if (column != "model" or several_models) and (column != "GPU MB" or any_gpu)]


def _cells(row: dict[str, Any], columns: list[str]) -> list[str]:
    if row["status"] == "ok":
        return [_CELLS[column](row) for column in columns]
    return [_CELLS[column](row) if column in _ALWAYS else "-" for column in columns]


def _header(column: str) -> tuple[str, str]:
    """``p50 ms`` → (``p50``, ``ms``): the terminal table puts units on a second header line to stay narrow."""
    name, _, unit = column.rpartition(" ")
    return (name, unit) if unit in UNITS else (column, "")


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a plain fixed-width table (no colours, no box drawing), easy to paste and to grep.

    Two header lines, names then units, keep the table within ~160 columns
    with every figure in it; the note (why a row failed) runs on unpadded.
    """
    columns = columns_for(rows)
    names, units = zip(*map(_header, columns))
    lines = [list(names), list(units), *(_cells(row, columns) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns) - 1)]
    return "\n".join(
        (
            "  ".join(
                cell.ljust(width) if column in TEXT_COLUMNS else cell.rjust(width)
                for column, cell, width in zip(columns, line, widths)
            )
            + ("  " + line[-1] if line[-1] else "")
        ).rstrip()
        for line in lines
    )


def environment(loaded: list[str], gpus: list[str] | None = None) -> dict[str, Any]:
    """Machine and versions; a backend's library version only if that backend ran (versions read without importing).

    ``gpus`` (``GpuInfo.describe()`` lines) is recorded when given: a report
    of CPU rows does not depend on the GPU beside them.
    """
    import importlib.metadata
    import platform

    from gantool import __version__, machine

    versions: dict[str, str | None] = {}
    for package in ["numpy"] + [name for name in DISTRIBUTIONS if name in loaded and name != "numpy"]:
        versions[package] = None
        for distribution in DISTRIBUTIONS[package]:
            try:
                versions[package] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    found: dict[str, Any] = {
        "cpu": machine.cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "gantool": __version__,
    }
    if gpus:
        found["gpus"] = list(gpus)
    return found


def make_report(
    models: list[str], settings: dict[str, Any], environment: dict[str, Any], rows: list[dict[str, Any]], command: str
) -> dict[str, Any]:
    """The report dict that ``--json`` saves and ``--compare`` reads, stamped with the current UTC time."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "models": list(models),
        "settings": settings,
        "environment": environment,
        "rows": rows,
    }


NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def write_json(report: dict[str, Any], path: Path) -> None:
    """The whole report as strict JSON (jq and browsers refuse ``Infinity``): an identical output's PSNR is "inf"."""
    from gantool.files import atomic_write_text

    atomic_write_text(path, json.dumps(_strict(report), indent=2, allow_nan=False) + "\n")


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float spelled as a string ("inf", "-inf", "nan"); load_report reads them back."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value


def write_csv(report: dict[str, Any], path: Path) -> None:
    """One line per row under a header of ROW_KEYS, for spreadsheets and pandas; None is an empty field."""
    from gantool.files import atomic_write_text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROW_KEYS)
    for row in report["rows"]:
        writer.writerow(["" if row.get(key) is None else row[key] for key in ROW_KEYS])
    atomic_write_text(path, out.getvalue())


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """A section for benchmarks/RESULTS.md: title, command, date, the environment, then the table."""
    from gantool.files import atomic_write_text

    env = report["environment"]
    versions = ", ".join(f"{name} {version or '?'}" for name, version in env["versions"].items())
    lines = [
        f"## gantool bench: {', '.join(report['models'])}",
        "",
        f"{report['created']}. `{report['command']}`",
        "",
        f"- CPU: {env['cpu']} ({env['cpu_count']} threads)",
        *(f"- GPU: {gpu}" for gpu in env.get("gpus", [])),
        f"- OS: {env['platform']}",
        f"- Python {env['python']}, gantool {env.get('gantool', '?')}, {versions}",
        "",
    ]
    columns = columns_for(report["rows"])
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" if column in TEXT_COLUMNS else "---:" for column in columns) + "|")
    for row in report["rows"]:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row, columns)) + " |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def load_report(path: Path) -> dict[str, Any]:
    """A saved report, checked: ArtifactError (one line) for anything ``--compare`` could not read correctly."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        report = json.loads(text)
    except RecursionError:
        raise ArtifactError(f"{path} is nested too deeply: not a gantool bench report") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not JSON ({exc.msg}, line {exc.lineno}): not a gantool bench report") from None
    if isinstance(report, dict) and "format" not in report and {"spec", "rows", "environment"} <= set(report):
        raise ArtifactError(
            f"{path} was written by an older gantool bench: re-run gantool bench to get a version 2 report"
        )
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a gantool bench report")
    if report.get("version") != VERSION:
        raise ArtifactError(
            f"{path} is a version {report.get('version')} bench report, this gantool reads version {VERSION}: "
            "re-run gantool bench to get a version 2 report"
        )
    missing = [key for key in REPORT_KEYS if key not in report]
    if missing or not isinstance(report["rows"], list) or not isinstance(report["environment"], dict):
        raise ArtifactError(
            f"{path} is an incomplete bench report (missing or malformed: {', '.join(missing) or 'rows'})"
        )
    for number, row in enumerate(report["rows"], 1):
        lacking = [key for key in ROW_KEYS if key not in row] if isinstance(row, dict) else ["all keys"]
        if lacking:
            raise ArtifactError(f"{path}: row {number} lacks {', '.join(lacking)}")
        for key, item in row.items():  # "inf" back to a float where write_json spelled one out
            if isinstance(item, str) and item in NON_FINITE and key != "error":
                row[key] = NON_FINITE[item]
        wrong = [key for key in ROW_KEYS if not _plain_value(key, row[key])]
        if wrong:
            raise ArtifactError(f"{path}: row {number} has values of the wrong type: {', '.join(wrong)}")
    return report


TEXT_KEYS = ("model", "backend", "device", "precision", "status", "error")


def _plain_value(key: str, value: Any) -> bool:
    """Text where the contract has text, else a number, a bool or null: never a list or object from a foreign file."""
    if key in TEXT_KEYS:
        return isinstance(value, str)
    return value is None or isinstance(value, (str, int, float, bool))
