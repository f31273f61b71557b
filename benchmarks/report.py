"""What ``gantool bench`` prints and saves: the plain table and the environment block of the JSON report.

Kept apart from the command so the table layout and the version probing can
be read (and reused by scripts) without the timing loop around them.
"""

from __future__ import annotations

import os
from typing import Any

# Distributions that provide each package (onnxruntime-gpu installs the same module as onnxruntime).
DISTRIBUTIONS = {
    "gantool": ("gantool",),
    "numpy": ("numpy",),
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
}
COLUMNS = (
    "backend",
    "device",
    "precision",
    "size",
    "batch",
    "runs",
    "mean ms",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "images/s",
    "note",
)


def size_label(height: int | None, width: int | None) -> str:
    """``256x256``; ``-`` for a row that never reached a model (a backend that did not load)."""
    return "-" if height is None or width is None else f"{height}x{width}"


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
        batch = "-" if row["batch_size"] is None else str(row["batch_size"])
        lines.append(
            [
                row["backend"],
                row["device"] or "-",
                row["precision"] or "-",
                size_label(row["height"], row["width"]),
                batch,
                *numbers,
                note,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell.rjust(w) if 3 <= i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        + ("  " + line[-1] if line[-1] else "")
        for line in lines
    ).rstrip()


def environment(loaded: list[str]) -> dict[str, Any]:
    """Machine and versions; a backend's library version only if that backend ran (versions read without importing)."""
    import importlib.metadata
    import platform

    from gantool import machine

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
        "cpu": machine.cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
