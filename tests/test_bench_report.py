"""What ``gantool bench`` writes and reads: the table, JSON/CSV/Markdown, ``--compare`` and ``--plot``.

Everything runs on synthetic rows built here (nothing is timed), so these
tests double as examples of the report contract: ``row(...)`` is a cell
that ran, ``failed(...)`` one that did not, ``report(...)`` the saved file.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from gantool.benchmarks.compare import compare, environment_differences, format_comparison
from gantool.benchmarks.plot import check_plot_available, plot
from gantool.benchmarks.report import (
    ROW_KEYS,
    format_table,
    load_report,
    make_report,
    write_csv,
    write_json,
    write_markdown,
)
from gantool.errors import ArtifactError, GantoolError, UsageError

ENVIRONMENT = {
    "cpu": "AMD EPYC 7B13",
    "cpu_count": 2,
    "python": "3.11.7",
    "platform": "Linux-6.18-x86_64",
    "versions": {"numpy": "2.4.6", "torch": "2.13.0+cpu", "onnxruntime": "1.32.0"},
    "gantool": "0.1.0",
}


def row(backend: str = "onnxruntime", batch: int = 8, p50: float = 2.0, **changes: Any) -> dict[str, Any]:
    """A cell that ran on the CPU: 8×28×28 digits, p50 ``p50`` ms with a 2% IQR, exact against PyTorch."""
    cell = {
        "model": "generator", "backend": backend, "device": "cpu", "precision": "fp32",
        "height": 28, "width": 28, "batch_size": batch, "status": "ok", "error": "",
        "artifact": "runs/digits/generator.onnx", "runs": 500, "stable": True,
        "mean_ms": p50 * 1.01, "std_ms": p50 * 0.03, "p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.3,
        "min_ms": p50 * 0.9, "max_ms": p50 * 1.6, "iqr_ms": p50 * 0.02, "images_per_s": batch / (p50 * 1.01) * 1000,
        "cold_ms": 40.0, "compute_p50_ms": None, "compute_images_per_s": None, "compute_is_end_to_end": True,
        "peak_rss_mb": 101.4, "peak_gpu_mb": None, "flops_per_image": 3.7e6,
        "achieved_gflops": 3.7e6 * batch / (p50 * 1.01) * 1000 / 1e9, "max_abs_err": 8.5e-7, "psnr_db": 121.3,
    }  # fmt: skip
    cell.update(changes)
    return cell


def failed(backend: str = "tensorrt", status: str = "unavailable", error: str = "tensorrt is not installed"):
    """A backend that never loaded: only the keys that say which and why, everything measured None."""
    cell: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    cell.update(model="generator", backend=backend, device="cuda", precision="fp16", status=status, error=error)
    return cell


def report(rows: list[dict[str, Any]], **environment: Any) -> dict[str, Any]:
    settings = {"batch_sizes": [1, 8], "warmup_s": 0.5, "min_runs": 10, "max_s": 2.0}
    command = "gantool bench runs/digits --batch-sizes 1,8"
    return make_report(["generator"], settings, {**ENVIRONMENT, **environment}, rows, command)


ROWS = [
    row("torch", 1, 0.116, psnr_db=math.inf, max_abs_err=0.0),
    row("onnxruntime", 256, 1967.4, stable=False),
    failed(),
]


def test_the_table_shows_what_ran_what_wobbled_and_what_failed() -> None:
    lines = format_table(ROWS).splitlines()
    names, units = lines[0].split(), lines[1].split()  # units on a second header line keep the table narrow
    assert names[:6] == ["backend", "device", "precision", "size", "batch", "runs"]
    assert "model" not in names and "GPU" not in names  # one model, no GPU rows
    for name in ("p50", "p90", "p99", "±IQR", "images/s", "cold", "compute", "RSS", "GFLOP/s", "max", "PSNR"):
        assert name in names
    assert units == ["ms", "ms", "ms", "ms", "ms", "img/s", "MB", "dB"]
    torch, onnxruntime, tensorrt = lines[2:]
    assert torch.split()[:10] == ["torch", "cpu", "fp32", "28x28", "1", "500", "0.116", "0.128", "0.151", "±0.0023"]
    assert "= e2e" in torch and torch.split()[-2:] == ["0", "inf"]  # bit-identical to PyTorch: error 0, PSNR inf
    assert " 1967 " in onnxruntime and " 129 " in onnxruntime and onnxruntime.endswith("unstable")  # 3 digits
    assert tensorrt.split()[:6] == ["tensorrt", "cuda", "fp16", "-", "-", "-"]
    assert tensorrt.endswith("unavailable: tensorrt is not installed")
    assert max(map(len, lines[:4])) <= 160


def test_the_table_adds_model_and_gpu_columns_only_when_needed() -> None:
    rows = [row(), row(model="generator_b2a", device="cuda", peak_gpu_mb=512.0, compute_is_end_to_end=False,
                       compute_images_per_s=12345.6)]  # fmt: skip
    lines = format_table(rows).splitlines()
    assert lines[0].startswith("model") and " GPU " in lines[0]
    assert lines[3].startswith("generator_b2a") and "12,346" in lines[3] and " 512 " in lines[3]


def test_json_round_trip_keeps_every_row_and_infinity(tmp_path: Path) -> None:
    saved = report(ROWS, gpus=["cuda:0 NVIDIA H100 80GB HBM3 (sm 9.0, 81559 MiB)"])
    write_json(saved, tmp_path / "bench.json")
    loaded = load_report(tmp_path / "bench.json")
    assert loaded == saved and loaded["rows"][0]["psnr_db"] == math.inf
    assert '"psnr_db": "inf"' in (tmp_path / "bench.json").read_text()  # strict JSON: jq and browsers read it too
    assert (loaded["format"], loaded["version"]) == ("gantool.bench", 2) and loaded["created"].endswith("Z")


def test_csv_has_every_row_key_and_empty_fields_for_none(tmp_path: Path) -> None:
    write_csv(report(ROWS), tmp_path / "bench.csv")
    text = (tmp_path / "bench.csv").read_text()
    assert text.splitlines()[0] == ",".join(ROW_KEYS) and len(text.splitlines()) == 1 + len(ROWS)
    parsed = list(csv.DictReader(text.splitlines()))
    assert [r["backend"] for r in parsed] == ["torch", "onnxruntime", "tensorrt"]
    assert parsed[0]["p50_ms"] == "0.116" and parsed[0]["psnr_db"] == "inf" and parsed[0]["peak_gpu_mb"] == ""
    assert parsed[2]["height"] == "" and parsed[2]["error"] == "tensorrt is not installed"


def test_markdown_has_the_command_the_environment_and_a_line_per_row(tmp_path: Path) -> None:
    write_markdown(report(ROWS), tmp_path / "bench.md")
    lines = (tmp_path / "bench.md").read_text().splitlines()
    assert lines[0] == "## gantool bench: generator"
    assert "`gantool bench runs/digits --batch-sizes 1,8`" in lines[2]
    assert "- CPU: AMD EPYC 7B13 (2 threads)" in lines and any("torch 2.13.0+cpu" in line for line in lines)
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(ROWS) and table[1].startswith("|---|---|")
    assert table[2].startswith("| torch | cpu | fp32 | 28x28 | 1 | 500 | 0.116 |")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("not json {", "is not JSON"),
        ('{"hello": "world"}', "is not a gantool bench report"),
        ("[1, 2]", "is not a gantool bench report"),
        ('{"model": "runs/digits", "spec": {}, "settings": {}, "environment": {}, "rows": []}', "older gantool"),
        ('{"format": "gantool.bench", "version": 3}', "version 3 bench report"),
        ('{"format": "gantool.bench", "version": 2, "rows": []}', "incomplete bench report"),
    ],
)
def test_load_report_refuses_what_it_cannot_compare(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "old.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ArtifactError, match=message) as caught:
        load_report(path)
    assert "\n" not in str(caught.value)


def test_load_report_names_a_row_without_the_contract_keys(tmp_path: Path) -> None:
    saved = report([row(), {"backend": "torch", "status": "ok"}])
    write_json(saved, tmp_path / "bench.json")
    with pytest.raises(ArtifactError, match="row 2 lacks model, device"):
        load_report(tmp_path / "bench.json")


def test_compare_two_saved_reports(tmp_path: Path) -> None:
    old = report([row("torch", 1, 1.0), row("torch", 8, 2.0), row("onnxruntime", 8, 1.0), row("torch", 64, 9.0)])
    new = report(
        [row("torch", 1, 1.3), row("torch", 8, 2.02), row("onnxruntime", 8, 0.5), row("torch", 256, 30.0)],
        cpu="Intel Xeon 8480",
        versions={**ENVIRONMENT["versions"], "torch": "2.14.0+cpu"},
    )
    write_json(old, tmp_path / "old.json")
    write_json(new, tmp_path / "new.json")
    comparisons = compare(load_report(tmp_path / "old.json"), load_report(tmp_path / "new.json"))
    verdicts = [(c.key["backend"], c.key["batch_size"], c.verdict) for c in comparisons]
    assert verdicts == [
        ("torch", 1, "regression"),  # 30% slower, the spread is 2%
        ("torch", 8, "same"),  # 1% slower, within the spread
        ("onnxruntime", 8, "improvement"),
        ("torch", 256, "new"),
        ("torch", 64, "gone"),
    ]
    assert comparisons[0].p50_ratio == pytest.approx(1.3) and comparisons[0].throughput_ratio == pytest.approx(1 / 1.3)
    assert environment_differences(old, new) == [
        "cpu: AMD EPYC 7B13 → Intel Xeon 8480",
        "torch: 2.13.0+cpu → 2.14.0+cpu",
    ]
    table = format_comparison(comparisons).splitlines()
    assert table[0].split()[:5] == ["backend", "device", "precision", "size", "batch"]
    assert table[1].endswith("regression") and "1.30x" in table[1] and table[2].endswith("same")
    assert table[-1] == "1 regression, 1 improvement, 1 same, 1 new, 1 gone"


def test_a_spread_wider_than_the_change_is_not_a_regression() -> None:
    noisy_old, noisy_new = row(p50=1.0, iqr_ms=0.4), row(p50=1.3, iqr_ms=0.1)
    [comparison] = compare(report([noisy_old]), report([noisy_new]))
    assert comparison.verdict == "same" and comparison.spread_ms == pytest.approx(0.4)


def test_a_cell_that_fails_now_is_gone_with_the_reason() -> None:
    now_failed = failed("onnxruntime", "failed", "out of memory") | {"device": "cpu", "precision": "fp32"}
    now_failed.update(height=28, width=28, batch_size=8)
    [comparison] = compare(report([row()]), report([now_failed]))
    assert comparison.verdict == "gone" and comparison.note == "now failed: out of memory"
    assert environment_differences(report([]), report([])) == []


def test_plot_writes_a_png_people_can_open(tmp_path: Path) -> None:
    from PIL import Image

    rows = [row(backend, batch, p50) for backend in ("torch", "onnxruntime") for batch, p50 in ((1, 0.1), (8, 0.3))]
    out = tmp_path / "bench.png"
    plot(report([*rows, failed()]), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 300
    assert [p.name for p in tmp_path.iterdir()] == ["bench.png"]  # no temporary file left


def test_plot_refuses_an_unwritable_path_and_a_report_with_nothing_run(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(GantoolError, match="cannot write"):
        plot(report([row()]), tmp_path / "a-file" / "bench.png")
    with pytest.raises(GantoolError, match="no cell of the report ran"):
        plot(report([failed()]), tmp_path / "bench.png")
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for attempt in (check_plot_available, lambda: plot(report([row()]), tmp_path / "bench.png")):
        with pytest.raises(UsageError, match=r'pip install "gantool\[plot\]"'):
            attempt()
    assert not (tmp_path / "bench.png").exists()


def test_a_report_with_foreign_values_is_refused_in_one_line(tmp_path: Path) -> None:
    saved = report(ROWS)
    write_json(saved, tmp_path / "ok.json")
    data = json.loads((tmp_path / "ok.json").read_text())
    data["rows"][0]["model"] = ["not", "a", "name"]
    (tmp_path / "list.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="row 1 has values of the wrong type: model"):
        load_report(tmp_path / "list.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match="nested too deeply"):
        load_report(tmp_path / "deep.json")
