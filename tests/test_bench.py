"""``gantool bench`` as a command: tiny models on the CPU, every row of the report contract, refusals before timing.

No test here asserts how fast anything is: timings belong in benchmarks, not in pass/fail tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from conftest import make_checkpoint, make_translator_run
from gantool.benchmarks.report import REPORT_KEYS, ROW_KEYS, load_report
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import gpu, registry

TINY = ["--batch-sizes", "1,3", "--warmup-s", "0", "--min-runs", "2", "--max-s", "0"]
FLOATS = ("mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "iqr_ms", "images_per_s", "cold_ms",
          "compute_p50_ms", "compute_images_per_s", "peak_rss_mb", "flops_per_image", "achieved_gflops",
          "max_abs_err", "psnr_db")  # fmt: skip


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("exported") / "run"
    export_checkpoint(make_checkpoint(run), run)
    return run


@pytest.fixture(scope="module")
def translator_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CycleGAN run (3×16×16 native) with only its a2b direction exported."""
    run = make_translator_run(tmp_path_factory.mktemp("translator") / "run")
    export_checkpoint(run / "generator_a2b.safetensors", run)
    return run


@pytest.fixture(scope="module")
def exported_translators(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CycleGAN run with both directions exported (FP32 and FP16 ONNX each)."""
    run = make_translator_run(tmp_path_factory.mktemp("translators") / "cyclegan")
    for direction in ("a2b", "b2a"):
        export_checkpoint(run / f"generator_{direction}.safetensors", run)
    return run


def bench_json(cli, tmp_path: Path, *args: Any) -> tuple[dict[str, Any], Any]:
    out = tmp_path / "bench.json"
    result = cli("bench", *args, *TINY, "--json", out)
    assert result.exit_code == 0, result.stderr
    return load_report(out), result  # the reader --compare uses: "inf" back to a float


def cells(rows: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(row[key] for key in keys) for row in rows]


def check_contract(row: dict[str, Any]) -> None:
    """Every key of the contract, with the types it promises; measured keys None unless the row ran."""
    assert list(row) == list(ROW_KEYS)
    assert all(isinstance(row[key], str) for key in ("model", "backend", "device", "precision", "status", "error"))
    if row["status"] != "ok":
        assert row["error"] and all(row[key] is None for key in ROW_KEYS[ROW_KEYS.index("runs") :])
        return
    assert row["error"] == "" and isinstance(row["artifact"], str) and Path(row["artifact"]).is_file()
    assert all(isinstance(row[key], int) for key in ("height", "width", "batch_size", "runs"))
    assert isinstance(row["stable"], bool) and isinstance(row["compute_is_end_to_end"], bool)
    assert all(isinstance(row[key], float) for key in FLOATS), {key: row[key] for key in FLOATS}
    assert row["runs"] >= 2 and row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["cold_ms"] > 0 and row["images_per_s"] > 0 and row["peak_rss_mb"] > 0
    assert row["peak_gpu_mb"] is None  # a CPU row
    # on the CPU compute-only is end to end, and the row says so instead of timing the same thing twice
    assert row["compute_is_end_to_end"] is True
    assert (row["compute_p50_ms"], row["compute_images_per_s"]) == (row["p50_ms"], row["images_per_s"])
    assert row["flops_per_image"] > 0
    assert row["achieved_gflops"] == pytest.approx(row["flops_per_image"] * row["images_per_s"] / 1e9)


def check_parity(row: dict[str, Any]) -> None:
    """Torch FP32 is the reference itself; ONNX Runtime is close in FP32, looser in FP16."""
    if row["backend"] == "torch":
        assert row["max_abs_err"] == 0 and math.isinf(row["psnr_db"])
    elif row["precision"] == "fp32":
        assert row["max_abs_err"] < 1e-4 and 60 < row["psnr_db"] < math.inf
    else:
        assert row["max_abs_err"] < 1e-2 and 30 < row["psnr_db"] < math.inf


def test_a_gan_run_gives_every_contract_key_per_row(cli, exported_run: Path, tmp_path: Path) -> None:
    report, result = bench_json(cli, tmp_path, exported_run, "--precisions", "fp32,fp16")
    assert set(report) == set(REPORT_KEYS) and report["format"] == "gantool.bench" and report["version"] == 2
    assert report["models"] == [str(exported_run)] and report["command"].startswith(f"gantool bench {exported_run} ")
    assert report["settings"]["batch_sizes"] == [1, 3] and report["settings"]["input_variants"] == 4
    assert {"cpu", "cpu_count", "python", "platform", "versions", "gantool"} <= set(report["environment"])
    assert {"numpy", "torch", "onnxruntime"} <= set(report["environment"]["versions"])
    rows = report["rows"]
    assert cells(rows, "model", "backend", "precision", "batch_size", "status") == [
        ("generator", "torch", "fp32", 1, "ok"),
        ("generator", "torch", "fp32", 3, "ok"),
        ("generator", "torch", "fp16", None, "unsupported"),
        ("generator", "onnxruntime", "fp32", 1, "ok"),
        ("generator", "onnxruntime", "fp32", 3, "ok"),
        ("generator", "onnxruntime", "fp16", 1, "ok"),
        ("generator", "onnxruntime", "fp16", 3, "ok"),
    ]
    for row in rows:
        check_contract(row)
    ran = [row for row in rows if row["status"] == "ok"]
    for row in ran:
        check_parity(row)
        assert (row["height"], row["width"]) == (8, 8)  # a GAN's rows carry its fixed output size
    assert {row["flops_per_image"] for row in ran} == {2 * (8 * 16 + 16 * 32 + 32 * 64)}  # the MLP's MACs × 2
    assert Path(rows[5]["artifact"]).name == "generator.fp16.onnx"
    header = result.stdout.splitlines()[0].split()
    assert header[:6] == ["backend", "device", "precision", "size", "batch", "runs"] and "images/s" in header


def test_a_cyclegan_run_means_both_translators(cli, exported_translators: Path, tmp_path: Path) -> None:
    args = ["--precisions", "fp32,fp16", "--sizes", "16,12x20", "--device", "cpu"]
    report, result = bench_json(cli, tmp_path, exported_translators, *args)
    rows = report["rows"]
    for row in rows:
        check_contract(row)
    ran = [row for row in rows if row["status"] == "ok"]
    assert cells(ran, "model", "backend", "precision", "height", "width", "batch_size") == [
        (f"generator_{direction}", backend, precision, height, width, batch)
        for direction in ("a2b", "b2a")
        for backend, precision in (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"))
        for height, width in ((16, 16), (12, 20))
        for batch in (1, 3)
    ]
    for row in ran:
        check_parity(row)
        assert Path(row["artifact"]).name.startswith(row["model"])
    # FLOPs depend on the model and the size only, and a ResNet's scale with the pixels
    flops = {(row["model"], row["height"]): row["flops_per_image"] for row in ran}
    assert len(flops) == 4 and len({row["flops_per_image"] for row in ran}) == 2
    assert flops[("generator_a2b", 12)] == pytest.approx(flops[("generator_a2b", 16)] * (12 * 20) / (16 * 16))
    assert "generator_b2a" in result.stdout and report["settings"]["sizes"] == [[16, 16], [12, 20]]


def test_several_models_in_one_run(cli, exported_run: Path, translator_run: Path, tmp_path: Path) -> None:
    report, result = bench_json(cli, tmp_path, exported_run, translator_run, "--backends", "onnxruntime")
    assert report["models"] == [str(exported_run), str(translator_run)]
    assert cells(report["rows"], "model", "status", "height") == [
        ("generator", "ok", 8),
        ("generator", "ok", 8),
        ("generator_a2b", "ok", 16),
        ("generator_a2b", "ok", 16),
        ("generator_b2a", "failed", None),  # only a2b was exported: its row says so
    ]
    assert "generator_b2a.onnx does not exist" in report["rows"][4]["error"]
    assert result.stdout.splitlines()[0].split()[0] == "model"  # several models: the table names them


def test_two_runs_with_the_same_stem_are_told_apart(cli, tmp_path: Path) -> None:
    first, second = make_checkpoint(tmp_path / "first").parent, make_checkpoint(tmp_path / "second", seed=1).parent
    report, _ = bench_json(cli, tmp_path, first, second, "--backends", "torch")
    assert [row["model"] for row in report["rows"]] == ["first/generator"] * 2 + ["second/generator"] * 2


def test_a_file_is_one_model_and_an_onnx_alone_has_no_reference(cli, translator_run: Path, tmp_path: Path) -> None:
    report, _ = bench_json(cli, tmp_path, translator_run / "generator_a2b.onnx", "--backends", "torch,onnxruntime")
    rows = report["rows"]
    assert cells(rows, "model", "backend", "status") == [
        ("generator_a2b", "torch", "failed"),
        ("generator_a2b", "onnxruntime", "ok"),
        ("generator_a2b", "onnxruntime", "ok"),
    ]
    assert all(row["max_abs_err"] is None and row["psnr_db"] is None for row in rows)  # no checkpoint to compare with
    assert all(row["flops_per_image"] > 0 for row in rows[1:])  # the spec in the file is enough to count


def test_direction_picks_one_translator(cli, translator_run: Path, tmp_path: Path) -> None:
    report, _ = bench_json(cli, tmp_path, translator_run, "--direction", "b2a")
    assert report["settings"]["direction"] == "b2a"
    rows = report["rows"]
    assert cells(rows, "model", "backend", "status") == [
        ("generator_b2a", "torch", "ok"),
        ("generator_b2a", "torch", "ok"),
        ("generator_b2a", "onnxruntime", "failed"),
    ]
    assert Path(rows[0]["artifact"]).name == "generator_b2a.safetensors"
    assert "generator_b2a.onnx does not exist" in rows[2]["error"]


def test_unavailable_and_failing_backends_get_rows_not_crashes(
    cli, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "uninstalled", "conftest:NotInstalledBackend")
    # the run dir was never exported: onnxruntime cannot load it, torch can
    report, result = bench_json(cli, tmp_path, tiny_checkpoint.parent, "--backends", "uninstalled,onnxruntime,torch")
    rows = report["rows"]
    assert cells(rows, "backend", "status") == [
        ("uninstalled", "unavailable"),
        ("onnxruntime", "failed"),
        ("torch", "ok"),
        ("torch", "ok"),
    ]
    for row in rows:
        check_contract(row)
    assert "pip install gantool-no-such-engine" in rows[0]["error"] and "gantool export" in rows[1]["error"]
    assert "unavailable: " in result.stdout and "failed: " in result.stdout
    assert "onnxruntime" not in report["environment"]["versions"]  # it never ran


def test_every_output_file_and_a_comparison(cli, exported_run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    assert cli("bench", exported_run, *TINY, "--json", old).exit_code == 0
    outputs = {"--json": tmp_path / "new.json", "--csv": tmp_path / "new.csv", "--markdown": tmp_path / "new.md"}
    flags = [str(part) for pair in outputs.items() for part in pair]
    result = cli("bench", exported_run, *TINY, *flags, "--plot", tmp_path / "new.png", "--compare", old)
    assert result.exit_code == 0, result.stderr
    assert all(path.stat().st_size > 0 for path in [*outputs.values(), tmp_path / "new.png"])
    assert "verdict" in result.stdout  # the comparison table, after the bench table
    assert outputs["--csv"].read_text().splitlines()[0].split(",") == list(ROW_KEYS)
    assert json.loads(outputs["--json"].read_text())["command"].endswith(
        f"--plot {tmp_path / 'new.png'} --compare {old}"
    )


@pytest.mark.parametrize(
    "flags",
    [
        ["--batch-sizes", "0"],
        ["--batch-sizes", "a,b"],
        ["--backends", "tensorflow"],
        ["--backends", ","],
        ["--min-runs", "0"],
        ["--device", "gpu"],
        ["--precisions", "fp32,int4"],
        ["--precisions", ","],
        ["--plot", "chart.svg"],
        ["--csv", "bench.json"],  # the same file as --json
    ],
)
def test_bad_bench_flags_exit_2_and_write_nothing(cli, tiny_checkpoint: Path, tmp_path: Path, flags: list[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    flags = [str(out / flag) if flag.endswith((".svg", ".json")) else flag for flag in flags]
    result = cli("bench", tiny_checkpoint.parent, *flags, "--json", out / "bench.json")
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert result.stdout == "" and list(out.iterdir()) == []


def test_a_bad_comparison_file_fails_before_timing(cli, tiny_checkpoint: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text('{"not": "a report"}')
    result = cli("bench", tiny_checkpoint.parent, *TINY, "--compare", old, "--json", tmp_path / "new.json")
    assert result.exit_code == 1 and "is not a gantool bench report" in result.stderr
    assert "bench:" not in result.stderr and not (tmp_path / "new.json").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sizes", "18"], "multiples of 4"),
        (["--sizes", "4"], "at least 8"),
        (["--sizes", "16x"], "sizes like 256 or 192x256"),
        (["--sizes", ","], "--sizes is empty"),
        (["--direction", "c2d"], "--direction must be one of a2b, b2a"),
    ],
)
def test_bad_translator_flags_exit_2(cli, translator_run: Path, flags: list[str], message: str) -> None:
    result = cli("bench", translator_run, *flags)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sizes", "16"], "--sizes applies to translators only"),
        (["--direction", "a2b"], "--direction applies to CycleGAN translators only"),
    ],
)
def test_translator_flags_are_refused_for_a_gan(
    cli, exported_run: Path, translator_run: Path, flags: list[str], message: str
) -> None:
    for models in ([exported_run], [translator_run, exported_run]):  # alone, or among translators
        result = cli("bench", *models, *flags, *TINY)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr
        assert result.stdout == ""  # refused before anything was timed


def test_a_translator_file_is_not_run_as_the_other_direction(cli, translator_run: Path) -> None:
    result = cli("bench", translator_run / "generator_a2b.onnx", "--direction", "b2a", *TINY)
    assert result.exit_code == 2 and "is the a2b translator, not b2a" in result.stderr


def test_bench_refuses_to_overwrite_without_force(cli, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.csv"
    out.write_text("old")
    result = cli("bench", tiny_checkpoint.parent, *TINY, "--csv", out)
    assert result.exit_code == 2 and "--force" in result.stderr and out.read_text() == "old"
    result = cli("bench", tiny_checkpoint.parent, *TINY, "--csv", out, "--force")
    assert result.exit_code == 0 and out.read_text().startswith("model,backend,")


def test_bench_fails_when_no_backend_can_run(cli, tmp_path: Path) -> None:
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    result = cli("bench", not_a_run, *TINY)
    assert result.exit_code == 1 and "no backend could run" in result.stderr
    assert result.stdout.count("is it a gantool run dir?") == 2  # one row per backend says why


def test_a_missing_model_is_one_line_not_a_table(cli, tmp_path: Path) -> None:
    result = cli("bench", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.stdout == "" and result.stderr.strip() == f"error: {tmp_path / 'nowhere'} does not exist"


def test_each_backend_at_each_precision_it_has_and_a_row_for_each_it_lacks(
    cli, exported_run: Path, tmp_path: Path
) -> None:
    backends = ["--backends", "torch,onnxruntime,tensorrt", "--precisions", "fp32,fp16", "--device", "cpu"]
    report, result = bench_json(cli, tmp_path, exported_run, *backends)
    assert report["settings"]["device"] == "cpu" and report["settings"]["precisions"] == ["fp32", "fp16"]
    assert cells(report["rows"], "backend", "precision", "batch_size", "status") == [
        ("torch", "fp32", 1, "ok"),
        ("torch", "fp32", 3, "ok"),
        ("torch", "fp16", None, "unsupported"),
        ("onnxruntime", "fp32", 1, "ok"),
        ("onnxruntime", "fp32", 3, "ok"),
        ("onnxruntime", "fp16", 1, "ok"),
        ("onnxruntime", "fp16", 3, "ok"),
        ("tensorrt", "fp32", None, "unsupported"),
        ("tensorrt", "fp16", None, "unsupported"),
    ]
    errors = [r["error"] for r in report["rows"] if r["status"] == "unsupported"]
    assert errors == [
        "fp16 on the torch backend needs --device cuda",
        "tensorrt runs fp16, int8 only",
        "tensorrt runs on cuda only",
    ]
    assert {r["device"] for r in report["rows"]} == {"cpu"}
    assert "unsupported: tensorrt runs fp16, int8 only" in result.stdout


@pytest.mark.skipif(gpu.scan().usable, reason="checks the rows of a machine without a usable GPU")
def test_all_backends_on_cuda_without_a_gpu_get_a_row_each(cli, exported_run: Path) -> None:
    result = cli("bench", exported_run, "--backends", "all", "--device", "cuda", *TINY)
    assert result.exit_code == 1 and "no backend could run" in result.stderr
    rows = result.stdout.splitlines()[2:]  # below the two header lines (names, units)
    assert [row.split()[0] for row in rows] == registry.names()
    assert all("unavailable: " in row for row in rows)
    assert 'onnxruntime-gpu is not installed (pip install "gantool[gpu]"' in result.stdout
