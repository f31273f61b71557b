"""``gantool bench --compare OLD.json``: the same cells of two reports side by side, judged against their noise.

A cell is a model × backend × device × precision × size × batch size that
ran ("ok") in both reports. Its verdict compares the p50 latencies against
the measured spread: only a change larger than the wider of the two
interquartile ranges (and at least ``MIN_SPREAD`` of the old p50, so that
zero-spread data does not call every rounding a regression) is a
regression or an improvement. Pure functions over two report dicts (as
``report.load_report`` returns them): no I/O, no timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gantool.benchmarks.report import format_ms, format_rate, size_label

MIN_SPREAD = 0.02  # of the old p50: the smallest change worth a verdict
KEY = ("model", "backend", "device", "precision", "height", "width", "batch_size")
VERDICTS = ("regression", "improvement", "same", "new", "gone")
ENVIRONMENT_KEYS = ("cpu", "cpu_count", "platform", "python", "gantool", "gpus")

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Comparison:
    """One cell: ``verdict`` is regression, improvement, same, new (only in the new report) or gone (only the old)."""

    key: dict[str, Any]  # the KEY fields of the cell
    verdict: str
    old_p50_ms: float | None = None
    new_p50_ms: float | None = None
    old_images_per_s: float | None = None
    new_images_per_s: float | None = None
    spread_ms: float | None = None  # the change a verdict needs: max(old IQR, new IQR, MIN_SPREAD × old p50)
    note: str = ""  # why a cell is new or gone when the other report has it as not "ok"

    @property
    def p50_ratio(self) -> float | None:
        """New p50 / old p50: above 1 is slower."""
        return None if self.old_p50_ms is None or self.new_p50_ms is None else _ratio(self.new_p50_ms, self.old_p50_ms)

    @property
    def throughput_ratio(self) -> float | None:
        """New images/s / old images/s: above 1 is faster."""
        if self.old_images_per_s is None or self.new_images_per_s is None:
            return None
        return _ratio(self.new_images_per_s, self.old_images_per_s)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def _cells(report: dict[str, Any]) -> tuple[dict[Key, dict[str, Any]], dict[Key, dict[str, Any]]]:
    """The report's rows by KEY: those that ran, and those that did not (first row wins on a duplicate key)."""
    ran: dict[Key, dict[str, Any]] = {}
    did_not: dict[Key, dict[str, Any]] = {}
    for row in report["rows"]:
        key = tuple(row[field] for field in KEY)
        (ran if row["status"] == "ok" else did_not).setdefault(key, row)
    return ran, did_not


def _judge(key: Key, old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    spread = max(old["iqr_ms"], new["iqr_ms"], MIN_SPREAD * old["p50_ms"])
    change = new["p50_ms"] - old["p50_ms"]
    verdict = "regression" if change > spread else "improvement" if -change > spread else "same"
    return Comparison(
        dict(zip(KEY, key)),
        verdict,
        old["p50_ms"],
        new["p50_ms"],
        old["images_per_s"],
        new["images_per_s"],
        spread,
    )


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Comparison]:
    """Every cell of ``new`` in its order (judged, or "new"), then the cells only ``old`` had ("gone")."""
    old_ran, old_did_not = _cells(old)
    new_ran, new_did_not = _cells(new)
    result = []
    for key, row in new_ran.items():
        if key in old_ran:
            result.append(_judge(key, old_ran[key], row))
        else:
            before = old_did_not.get(key)
            note = f"was {before['status']}: {before['error']}" if before else ""
            result.append(Comparison(dict(zip(KEY, key)), "new", new_images_per_s=row["images_per_s"],
                                     new_p50_ms=row["p50_ms"], note=note))  # fmt: skip
    for key, row in old_ran.items():
        if key not in new_ran:
            after = new_did_not.get(key)
            note = f"now {after['status']}: {after['error']}" if after else ""
            result.append(Comparison(dict(zip(KEY, key)), "gone", old_images_per_s=row["images_per_s"],
                                     old_p50_ms=row["p50_ms"], note=note))  # fmt: skip
    return result


def environment_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``cpu: A → B`` per machine fact or library version that differs: a change there is not a regression."""
    before, after = old["environment"], new["environment"]
    lines = []
    for key in ENVIRONMENT_KEYS:
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {_value(before.get(key))} → {_value(after.get(key))}")
    old_versions, new_versions = before.get("versions", {}), after.get("versions", {})
    for package in sorted(set(old_versions) | set(new_versions)):
        if old_versions.get(package) != new_versions.get(package):
            lines.append(f"{package}: {_value(old_versions.get(package))} → {_value(new_versions.get(package))}")
    return lines


def _value(value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


HEADER = ("model", "backend", "device", "precision", "size", "batch", "old p50 ms", "new p50 ms", "p50 new/old",
          "old images/s", "new images/s", "images/s new/old", "spread ms", "verdict")  # fmt: skip
TEXT = frozenset({"model", "backend", "device", "precision", "verdict"})


def format_comparison(comparisons: list[Comparison]) -> str:
    """A plain fixed-width table, one line per cell with its verdict, then a count of each verdict."""
    several_models = len({c.key["model"] for c in comparisons}) > 1
    header = [column for column in HEADER if column != "model" or several_models]
    lines = [header]
    for c in comparisons:
        cells = {
            "model": c.key["model"],
            "backend": c.key["backend"],
            "device": c.key["device"],
            "precision": c.key["precision"],
            "size": size_label(c.key["height"], c.key["width"]),
            "batch": str(c.key["batch_size"]),
            "old p50 ms": format_ms(c.old_p50_ms),
            "new p50 ms": format_ms(c.new_p50_ms),
            "p50 new/old": _times(c.p50_ratio),
            "old images/s": format_rate(c.old_images_per_s),
            "new images/s": format_rate(c.new_images_per_s),
            "images/s new/old": _times(c.throughput_ratio),
            "spread ms": "-" if c.spread_ms is None else "±" + format_ms(c.spread_ms),
            "verdict": c.verdict + (f" ({c.note})" if c.note else ""),
        }
        lines.append([cells[column] for column in header])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]  # the verdict is not padded
    table = [
        "  ".join(
            cell.ljust(width) if column in TEXT else cell.rjust(width)
            for column, cell, width in zip(header, line, widths)
        )
        + "  "
        + line[-1]
        for line in lines
    ]
    counts = {verdict: sum(c.verdict == verdict for c in comparisons) for verdict in VERDICTS}
    table.append(", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count) or "no cells to compare")
    return "\n".join(line.rstrip() for line in table)
