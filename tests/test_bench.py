"""``gantool bench`` and its statistics: synthetic timings for the maths, tiny settings for the command.

No test here asserts how fast anything is: timings belong in benchmarks, not in pass/fail tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_checkpoint, make_translator_run
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import gpu, registry

TINY = ["--batch-sizes", "1,3", "--warmup-s", "0", "--min-runs", "2", "--max-s", "0"]


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


def test_bench_table_and_json(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli("bench", exported_run, *TINY, "--json", out)
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:6] == ["backend", "device", "precision", "size", "batch", "runs"] and "images/s" in header
    report = json.loads(out.read_text())
    assert set(report) == {"model", "spec", "settings", "environment", "rows"}
    assert report["spec"]["latent_dim"] == 8 and report["settings"]["batch_sizes"] == [1, 3]
    assert {"cpu", "cpu_count", "python", "versions"} <= set(report["environment"])
    assert {"numpy", "torch", "onnxruntime"} <= set(report["environment"]["versions"])
    assert [(r["backend"], r["batch_size"], r["status"]) for r in report["rows"]] == [
        ("torch", 1, "ok"),
        ("torch", 3, "ok"),
        ("onnxruntime", 1, "ok"),
        ("onnxruntime", 3, "ok"),
    ]
    for row in report["rows"]:
        assert row["runs"] >= 2 and row["p50_ms"] <= row["p99_ms"] and row["images_per_s"] > 0
        assert {"mean_ms", "p90_ms", "device", "artifact"} <= set(row)
        assert (row["height"], row["width"]) == (8, 8)  # a GAN's rows carry its fixed output size
    assert report["settings"]["sizes"] is None and report["settings"]["direction"] is None


def test_a_translator_is_timed_at_each_size(cli, translator_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli("bench", translator_run, "--sizes", "16,12x20", *TINY, "--json", out)
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["spec"]["kind"] == "cyclegan" and report["spec"]["direction"] == "a2b"  # a2b by default
    assert report["settings"]["sizes"] == [[16, 16], [12, 20]]
    cells = [(r["backend"], r["height"], r["width"], r["batch_size"], r["status"]) for r in report["rows"]]
    assert cells == [
        (backend, height, width, batch, "ok")
        for backend in ("torch", "onnxruntime")
        for height, width in ((16, 16), (12, 20))
        for batch in (1, 3)
    ]
    assert {Path(r["artifact"]).name for r in report["rows"]} == {"generator_a2b.safetensors", "generator_a2b.onnx"}
    table = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [(row[0], row[3], row[4]) for row in table[:4]] == [
        ("torch", "16x16", "1"),
        ("torch", "16x16", "3"),
        ("torch", "12x20", "1"),
        ("torch", "12x20", "3"),
    ]


def test_a_translator_defaults_to_its_native_size(cli, translator_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli("bench", translator_run, "--backends", "onnxruntime", *TINY, "--json", out)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["height"], r["width"], r["batch_size"]) for r in rows] == [(16, 16, 1), (16, 16, 3)]


def test_direction_picks_the_other_translator(cli, translator_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = cli("bench", translator_run, "--direction", "b2a", *TINY, "--json", out)
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["spec"]["direction"] == "b2a" and report["settings"]["direction"] == "b2a"
    rows = report["rows"]
    assert [(r["backend"], r["status"]) for r in rows] == [("torch", "ok"), ("torch", "ok"), ("onnxruntime", "failed")]
    assert Path(rows[0]["artifact"]).name == "generator_b2a.safetensors"
    assert "generator_b2a.onnx does not exist" in rows[2]["error"]  # only a2b was exported


def test_unavailable_and_failing_backends_get_rows_not_crashes(
    cli, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "uninstalled", "conftest:NotInstalledBackend")
    out = tmp_path / "bench.json"
    # the run dir was never exported: onnxruntime cannot load it, torch can
    result = cli("bench", tiny_checkpoint.parent, "--backends", "uninstalled,onnxruntime,torch", *TINY, "--json", out)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["backend"], r["status"]) for r in rows] == [
        ("uninstalled", "unavailable"),
        ("onnxruntime", "failed"),
        ("torch", "ok"),
        ("torch", "ok"),
    ]
    assert "pip install gantool-no-such-engine" in rows[0]["error"] and "gantool export" in rows[1]["error"]
    assert "unavailable: " in result.stdout and "failed: " in result.stdout
    assert "onnxruntime" not in json.loads(out.read_text())["environment"]["versions"]  # it never ran


@pytest.mark.parametrize(
    "flags",
    [
        ["--batch-sizes", "0"],
        ["--batch-sizes", "a,b"],
        ["--backends", "tensorflow"],
        ["--backends", ","],
        ["--min-runs", "0"],
        ["--device", "gpu"],
        ["--precisions", "fp32,int8"],
        ["--precisions", ","],
    ],
)
def test_bad_bench_flags_exit_2(cli, tiny_checkpoint: Path, flags: list[str]) -> None:
    result = cli("bench", tiny_checkpoint.parent, *flags)
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


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
def test_translator_flags_are_refused_for_a_gan(cli, exported_run: Path, flags: list[str], message: str) -> None:
    result = cli("bench", exported_run, *flags, *TINY)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stdout == ""  # refused before anything was timed


def test_a_translator_file_is_not_run_as_the_other_direction(cli, translator_run: Path) -> None:
    result = cli("bench", translator_run / "generator_a2b.onnx", "--direction", "b2a", *TINY)
    assert result.exit_code == 2 and "is the a2b translator, not b2a" in result.stderr


def test_bench_refuses_to_overwrite_json(cli, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    out.write_text("{}")
    result = cli("bench", tiny_checkpoint.parent, *TINY, "--json", out)
    assert result.exit_code == 2 and "--force" in result.stderr and out.read_text() == "{}"


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
    out = tmp_path / "bench.json"
    backends = "torch,onnxruntime,tensorrt"
    result = cli(
        "bench",
        exported_run,
        "--backends",
        backends,
        "--precisions",
        "fp32,fp16",
        "--device",
        "cpu",
        *TINY,
        "--json",
        out,
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["settings"]["device"] == "cpu" and report["settings"]["precisions"] == ["fp32", "fp16"]
    cells = [(r["backend"], r["precision"], r["batch_size"], r["status"]) for r in report["rows"]]
    assert cells == [
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
        "tensorrt runs fp16 only",
        "tensorrt runs on cuda only",
    ]
    assert Path(report["rows"][5]["artifact"]).name == "generator.fp16.onnx"
    assert {r["device"] for r in report["rows"]} == {"cpu"}
    table = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [row[1:3] for row in table[:3]] == [["cpu", "fp32"], ["cpu", "fp32"], ["cpu", "fp16"]]
    assert "unsupported: tensorrt runs fp16 only" in result.stdout


@pytest.mark.skipif(gpu.scan().usable, reason="checks the rows of a machine without a usable GPU")
def test_all_backends_on_cuda_without_a_gpu_get_a_row_each(cli, exported_run: Path) -> None:
    result = cli("bench", exported_run, "--backends", "all", "--device", "cuda", *TINY)
    assert result.exit_code == 1 and "no backend could run" in result.stderr
    rows = result.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == registry.names()
    assert all("unavailable: " in row for row in rows)
    assert 'onnxruntime-gpu is not installed (pip install "gantool[gpu]"' in result.stdout
