"""``gantool eval``'s outputs: plain tables on stdout, the report as JSON, and a PNG of FID and KID per row.

Every report names its extractor and the sha256 of the extractor's weights:
an FID is comparable only with another one from the same network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gantool.benchmarks.quality.evaluate import Evaluation

FORMAT, VERSION = "gantool-eval", 1
COLUMNS = (
    ("set", "set"), ("against", "against"), ("backend", "backend"), ("precision", "prec"), ("device", "device"),
    ("n", "N"), ("fid", "FID"), ("kid", "KID"), ("pr_precision", "P"), ("pr_recall", "R"),
    ("density", "dens"), ("coverage", "cov"), ("cycle_mae", "cycle MAE"),
)  # fmt: skip


def _cell(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "floor" if key == "backend" and row.get("kind") == "floor" else ""
    if key == "kid":
        return f"{value:.3g}±{row['kid_std']:.2g}"
    if key == "fid":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}" if key != "cycle_mae" else f"{value:.1f}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """One aligned line per row; columns no row fills are left out."""
    used = [(key, title) for key, title in COLUMNS if any(row.get(key) is not None for row in rows) or key == "backend"]
    cells = [[title for _, title in used]] + [[_cell(row, key) for key, _ in used] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(used))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in cells)


def format_classifier(summaries: list[dict[str, Any]]) -> str:
    """The digit classifier's reading of each set: confidence, entropy, smallest class share, label kept."""
    header = ["set", "N", "confidence", "entropy", "min class", "keeps digit", "after cycle"]
    lines = [header]
    for summary in summaries:
        keeps, cycle = summary.get("keeps_label"), summary.get("cycle_keeps_label")
        lines.append([
            summary["set"], str(summary["n"]), f"{summary['mean_confidence']:.3f}", f"{summary['entropy_bits']:.2f} bits",
            f"{summary['min_class_share']:.1%}", "" if keeps is None else f"{keeps:.1%}",
            "" if cycle is None else f"{cycle:.1%}",
        ])  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in lines)


def format_evaluation(evaluation: Evaluation) -> str:
    """The whole of one model's evaluation as text: distances, classifier, verdicts, notes."""
    parts = [
        f"{evaluation.model}" + (f" {evaluation.direction}" if evaluation.direction else ""),
        format_table(evaluation.rows),
    ]
    if evaluation.classifier:
        parts += ["", "digit classifier:", format_classifier(evaluation.classifier)]
    for found in evaluation.verdicts:
        parts.append(f"{found['backend']} {found['precision']} {found['device']}: {found['verdict']}")
    parts += [f"note: {note}" for note in evaluation.notes]
    return "\n".join(parts)


def make_report(
    evaluations: list[Evaluation], extractor: dict[str, Any], settings: dict[str, Any], command: str
) -> dict[str, Any]:
    """The dict ``--json`` saves: settings, extractor (name and hash), environment, and each model's results."""
    from datetime import datetime, timezone

    from gantool.benchmarks.report import environment

    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "extractor": extractor,
        "settings": settings,
        "environment": environment(["torch", "onnxruntime"]),
        "evaluations": [
            {"model": found.model, "direction": found.direction, "rows": found.rows, "classifier": found.classifier,
             "verdicts": found.verdicts, "notes": found.notes}
            for found in evaluations
        ],
    }  # fmt: skip


def plot(report: dict[str, Any], path: Path) -> None:
    """FID (left) and KID with its spread (right) per row, floors hatched: a loss shows as a bar past its floor."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [(found, row) for found in report["evaluations"] for row in found["rows"]]
    labels = [
        " ".join(str(part) for part in (found["direction"] or "", row["set"], "vs", row["against"],
                                        row.get("backend") or "", row.get("precision") or "") if part)
        for found, row in rows
    ]  # fmt: skip
    figure = Figure(figsize=(12, 0.45 * len(rows) + 1.6))
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, sharey=True)
    positions = list(range(len(rows)))
    hatches = ["//" if row["kind"] == "floor" else "" for _, row in rows]
    colours = ["0.75" if row["kind"] == "floor" else "tab:blue" for _, row in rows]
    for axis, key, title in ((left, "fid", "FID (lower is better)"), (right, "kid", "KID (lower is better)")):
        values = [row[key] for _, row in rows]
        errors = [row["kid_std"] for _, row in rows] if key == "kid" else None
        bars = axis.barh(positions, values, xerr=errors, color=colours)
        for bar, hatch in zip(bars, hatches):
            bar.set_hatch(hatch)
        axis.set_title(title)
        axis.grid(axis="x", alpha=0.3)
    left.set_yticks(positions, labels, fontsize=8)
    left.invert_yaxis()
    extractor = report["extractor"]
    figure.suptitle(f"gantool eval — extractor {extractor['name']} ({extractor['sha256'][:12]}), floors hatched")
    figure.tight_layout()
    from gantool.files import atomic_save

    atomic_save(path, lambda temporary: figure.savefig(str(temporary), format="png", dpi=110))
