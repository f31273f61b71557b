"""What the comparison scripts share: timing a whole process, summarising repeats, the environment, saving.

Scripts here run as ``python benchmarks/scripts/NAME.py`` (their folder is then
first on sys.path), so they import this module by its bare name.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gantool.machine import cpu_model

Samples = list[tuple[float, float]]  # (wall seconds, peak RSS MB) per run


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``command`` under /usr/bin/time: (wall seconds, peak RSS in MB, its stderr without time's line)."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(command)}\n{result.stderr}")
    *said, last = result.stderr.strip().splitlines()
    wall, rss_kb = last.split()
    return float(wall), int(rss_kb) / 1024, "\n".join(said)


def summarize_runs(runs: dict[str, Samples]) -> dict[str, dict[str, Any]]:
    """Median, range and peak RSS of each command's repeats."""
    return {
        name: {
            "median_s": statistics.median(t for t, _ in samples),
            "min_s": min(t for t, _ in samples),
            "max_s": max(t for t, _ in samples),
            "peak_rss_mb": max(m for _, m in samples),
            "runs": samples,
        }
        for name, samples in runs.items()
    }


def print_speedups(rows: dict[str, dict[str, Any]], baseline: str, title: str) -> None:
    """A Markdown table of the commands, each with its speed-up over ``baseline``'s median."""
    reference = rows[baseline]["median_s"]
    print(f"| {title} | median s | min–max s | peak RSS MB | speed-up |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['median_s']:.2f} | {row['min_s']:.2f}–{row['max_s']:.2f} "
            f"| {row['peak_rss_mb']:.0f} | {reference / row['median_s']:.2f}× |"
        )


def environment(packages: tuple[str, ...] = ("torch", "onnxruntime", "numpy", "pillow", "gantool")) -> dict[str, Any]:
    """Date, CPU, GPUs and versions: what a reader needs to know the figures came from."""
    from gantool.runtime import gpu

    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": [found.describe() for found in gpu.scan().gpus],
        "python": platform.python_version(),
        **versions,
    }


def save(summary: dict[str, Any], path: Path | None) -> None:
    """Write the summary as JSON to ``path`` when given (first: a closed stdout must not lose it), then print it."""
    text = json.dumps(summary, indent=2) + "\n"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(text, end="")
