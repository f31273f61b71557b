"""``gantool bench --plot F.png``: a bench report as one picture a person reads at a glance.

Left, throughput against batch size (log-log): where a backend stops
gaining from larger batches, and which backend wins at each. Right, the
p50 latency of a batch with a bar up to its p99 and a tick at its p90: what
a caller waits for, and how much worse its slow calls are. One line per
backend × precision (× device, model and image size when the report has
several). matplotlib is an optional extra, imported only here, drawn with
the Agg canvas directly (no pyplot, no global backend switch).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gantool.benchmarks.report import size_label
from gantool.errors import GantoolError, UsageError

MISSING = 'the plot needs matplotlib: pip install "gantool[plot]"'
SERIES = ("model", "height", "width", "backend", "device", "precision")


def check_plot_available() -> None:
    """UsageError when matplotlib is missing: ``--plot`` is refused before anything is timed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(MISSING) from None


def _series(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    """The rows that ran, grouped per line (in report order), each sorted by batch size."""
    lines: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "ok":
            lines.setdefault(tuple(row[key] for key in SERIES), []).append(row)
    return {key: sorted(cells, key=lambda row: row["batch_size"]) for key, cells in lines.items()}


def _labeller(keys: list[tuple[Any, ...]]) -> Callable[[tuple[Any, ...]], str]:
    """Labels that name only what differs between lines: ``onnxruntime fp16``, ``generator_a2b 256x256 torch fp32``."""
    varies = {name: len({key[i] for key in keys}) > 1 for i, name in enumerate(SERIES)}

    def label(key: tuple[Any, ...]) -> str:
        model, height, width, backend, device, precision = key
        parts = [model] if varies["model"] else []
        parts += [size_label(height, width)] if varies["height"] or varies["width"] else []
        parts += [backend, precision] + ([device] if varies["device"] else [])
        return " ".join(parts)

    return label


def _title(report: dict[str, Any]) -> str:
    env = report["environment"]
    machine = f"{env['cpu']} ({env['cpu_count']} threads)"
    gpus = env.get("gpus") or []
    if gpus:
        machine += " · " + "; ".join(gpus)
    return f"gantool bench: {', '.join(report['models'])} — {machine} — {report['created']}"


def _number(value: float, _position: object = None) -> str:
    """Axis labels as plain numbers (60,000 images/s, 0.25 ms) rather than powers of ten."""
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def _minor_labels(values: list[float]) -> Callable[[float, object], str]:
    """Labels between powers of ten: all of them within a narrow range, the 2s and 5s over a few decades, else none.

    Without them a range like 8–17 images/s would show a single labelled tick.
    """
    span = max(values) / min(values) if min(values) > 0 else math.inf
    shown = range(2, 10) if span < 3 else (2, 5) if span < 30 else ()

    def label(value: float, _position: object = None) -> str:
        leading = round(value / 10 ** math.floor(math.log10(value))) if value > 0 else 0
        return _number(value) if leading in shown else ""

    return label


def plot(report: dict[str, Any], path: Path) -> None:
    """Draw ``report`` (as ``report.make_report`` builds it) and save it to ``path`` as a PNG, atomically."""
    check_plot_available()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter, ScalarFormatter

    from gantool.files import atomic_path

    series = _series(report["rows"])
    if not series:
        raise GantoolError(f"nothing to plot in {path.name}: no cell of the report ran")
    label = _labeller(list(series))
    batches = sorted({row["batch_size"] for cells in series.values() for row in cells})

    figure = Figure(figsize=(13, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    throughput, latency = figure.subplots(1, 2)
    for index, (key, cells) in enumerate(series.items()):
        color = f"C{index % 10}"
        sizes = [row["batch_size"] for row in cells]
        p50 = [row["p50_ms"] for row in cells]
        throughput.plot(sizes, [row["images_per_s"] for row in cells], "o-", color=color, label=label(key))
        above = [row["p99_ms"] - row["p50_ms"] for row in cells]
        latency.errorbar(sizes, p50, yerr=[[0.0] * len(cells), above], fmt="o-", color=color, capsize=4)
        latency.plot(sizes, [row["p90_ms"] for row in cells], "_", color=color, markersize=12)
    rates = [row["images_per_s"] for cells in series.values() for row in cells]
    times = [row[key] for cells in series.values() for row in cells for key in ("p50_ms", "p99_ms")]
    for axes, ylabel, title, values in (
        (throughput, "images/s", "throughput (higher is better)", rates),
        (latency, "ms per batch", "latency p50, tick at p90, bar to p99 (lower is better)", times),
    ):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(batches)
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.yaxis.set_major_formatter(FuncFormatter(_number))
        axes.yaxis.set_minor_formatter(FuncFormatter(_minor_labels(values)))
        axes.set_xlabel("batch size")
        axes.set_ylabel(ylabel)
        axes.set_title(title, fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
    throughput.legend(fontsize=8)
    figure.suptitle(_title(report), fontsize=10)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
