"""gantool export --int8: a calibrated INT8 QDQ file, kept only with a passing quality verdict, and auto reading it.

Tiny models on the bundled data: a random 28×28 MLP that "learnt" the digits
(its verdict runs on 100 samples), and tiny digits-m translators at 16².
Random weights are enough: the verdict compares the INT8 file with the same
model in FP32, and a file calibrated on absurd data loses measurably.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import tiny_gan_spec, tiny_translator_spec
from gantool.artifacts import DIRECTIONS, checkpoint_in
from gantool.runtime import registry
from gantool.runtime.gpu import GpuScan
from gantool.spec import PRECISION_KEY, QUALITY_KEY

VERDICT_N = ["--quality-check", "100"]  # the GAN verdict's sample count: seconds, not minutes
NO_GPU = GpuScan((), "--device cpu")


def digits_gan(run: Path, seed: int = 0) -> Path:
    """A random 28×28 MLP generator whose spec says it learnt the bundled digits; returns the run dir."""
    import torch

    from gantool.checkpoint import save_generator
    from gantool.models import build_generator

    spec = replace(tiny_gan_spec(), height=28, width=28, provenance={"dataset": "digits"})
    torch.manual_seed(seed)
    run.mkdir(parents=True, exist_ok=True)
    save_generator(build_generator(spec).eval(), spec, checkpoint_in(run))
    return run


def digits_m_translators(run: Path) -> Path:
    """Both directions of a tiny random translator at 16² that says it learnt digits-m."""
    import torch

    from gantool.checkpoint import save_generator
    from gantool.models import build_generator

    run.mkdir(parents=True, exist_ok=True)
    for offset, direction in enumerate(DIRECTIONS):
        spec = replace(tiny_translator_spec(direction), provenance={"dataset": "digits-m"})
        torch.manual_seed(offset)
        save_generator(build_generator(spec).eval(), spec, checkpoint_in(run, direction))
    return run


@pytest.fixture(scope="module")
def exported_gan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits GAN with its FP32 and FP16 files, exported once for the module (tests work on copies)."""
    from conftest import run_cli

    run = digits_gan(tmp_path_factory.mktemp("exported") / "run")
    assert run_cli("export", run).exit_code == 0
    return run


@pytest.fixture(scope="module")
def int8_gan(exported_gan: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A copy of ``exported_gan`` after ``export --int8``, and that command's JSON rows."""
    from conftest import run_cli

    run = copy_run(exported_gan, tmp_path_factory.mktemp("int8") / "run")
    result = run_cli("export", run, "--int8", "--calib", "32", *VERDICT_N, "--json")
    assert result.exit_code == 0, result.stderr
    return run, json.loads(result.stdout)


def copy_run(source: Path, destination: Path) -> Path:
    """A copy keeping modification times, so exported files stay as fresh as their checkpoint."""
    import shutil

    return Path(shutil.copytree(source, destination))


def metadata(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


def leftovers(run: Path) -> list[str]:
    return [p.name for p in run.iterdir() if p.name.startswith(".")]


def test_a_gan_gets_a_calibrated_int8_file_that_carries_its_passing_verdict(int8_gan) -> None:
    from gantool.files import sha256_file

    run, rows = int8_gan
    assert [Path(row["path"]).name for row in rows] == ["generator.int8.onnx"]  # the FP32 and FP16 files reused
    int8 = rows[0]
    assert (int8["precision"], int8["status"], int8["tolerance"]) == ("int8", "ok", None)
    assert int8["verdict"]["verdict"].startswith("no measurable loss") and int8["calibration"] == "32 latents (seed 0)"
    path = run / "generator.int8.onnx"
    model = onnx.load(str(path))
    gemms = [node for node in model.graph.node if node.op_type == "Gemm"]
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    assert gemms and all(producers.get(node.input[0]) == "DequantizeLinear" for node in gemms)  # INT8 in, every one
    assert not any(node.op_type == "QuantizeLinear" and "tanh" in node.input[0].lower() for node in model.graph.node)
    stored = metadata(path)
    verdict = json.loads(stored[QUALITY_KEY])
    assert stored[PRECISION_KEY] == "int8" and verdict["passed"] is True and verdict["forced"] is False
    assert verdict["checkpoint_sha256"] == sha256_file(checkpoint_in(run)) and verdict["n"] > 0
    assert json.loads(stored["gantool.int8"])["calibration_count"] == 32
    assert "gantool.spec" in stored and not leftovers(run)


def test_up_to_date_fp32_exports_are_reused_and_stale_ones_refused(exported_gan: Path, int8_gan, cli, tmp_path) -> None:
    run, _ = int8_gan
    assert {p.name: p.read_bytes() for p in run.glob("*.onnx") if "int8" not in p.name} == {
        p.name: p.read_bytes() for p in exported_gan.glob("*.onnx")
    }
    again = cli("export", run, "--int8")
    assert again.exit_code == 2 and "generator.int8.onnx already exists (use --force" in again.stderr
    stale = copy_run(exported_gan, tmp_path / "stale")
    checkpoint_in(stale).touch()  # "retrained": the FP32 file is now older than the checkpoint
    refused = cli("export", stale, "--int8")
    assert refused.exit_code == 2 and "generator.onnx is older than generator.safetensors" in refused.stderr


def test_a_measurable_loss_refuses_the_file_and_force_int8_writes_it_marked(exported_gan, cli, tmp_path) -> None:
    run = copy_run(exported_gan, tmp_path / "run")
    absurd = tmp_path / "latents.npy"
    np.save(absurd, np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32) * 1e4)
    result = cli("export", run, "--int8", "--calib-data", absurd, *VERDICT_N)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: INT8 refused") and "measurably different" in last, result.stderr
    assert "REFUSED" in result.stdout
    assert not (run / "generator.int8.onnx").exists() and not leftovers(run)
    assert (run / "generator.onnx").is_file()  # the FP32 and FP16 files passed their own checks and stay

    forced = cli("export", run, "--int8", "--calib-data", absurd, *VERDICT_N, "--force-int8")
    assert forced.exit_code == 0, forced.stderr
    assert "FORCED" in forced.stdout
    verdict = json.loads(metadata(run / "generator.int8.onnx")[QUALITY_KEY])
    assert (verdict["passed"], verdict["forced"]) == (False, True)
    assert [c.precision for c in registry.candidates(run, None, "auto", None, NO_GPU)] == ["fp32", "fp32"]


def test_a_cyclegan_run_calibrates_each_direction_on_its_own_source_domain(cli, tmp_path: Path) -> None:
    run = digits_m_translators(tmp_path / "run")
    result = cli("export", run, "--int8", "--calib", "16", "--json")
    assert result.exit_code == 0, result.stderr
    rows = [row for row in json.loads(result.stdout) if row["precision"] == "int8"]
    assert [(Path(r["path"]).name, r["calibration"]) for r in rows] == [
        ("generator_a2b.int8.onnx", "16 images of digits-m trainA"),
        ("generator_b2a.int8.onnx", "16 images of digits-m trainB"),
    ]
    assert all(r["verdict"]["passed"] for r in rows)
    convs = [n for n in onnx.load(str(run / "generator_a2b.int8.onnx")).graph.node if n.op_type == "Conv"]
    producers = {
        out: node.op_type for node in onnx.load(str(run / "generator_a2b.int8.onnx")).graph.node for out in node.output
    }
    assert all(producers.get(conv.input[1]) == "DequantizeLinear" for conv in convs)  # per-channel INT8 weights


def test_int8_exclude_keeps_the_first_and_last_layers_in_fp32_and_the_report_lists_every_layer(
    exported_gan: Path, cli, tmp_path: Path
) -> None:
    run = copy_run(exported_gan, tmp_path / "run")
    result = cli(
        "export", run, "--int8", "--calib", "16", *VERDICT_N, "--int8-exclude", "first,last", "--int8-report", "--json"
    )
    assert result.exit_code == 0, result.stderr
    (row,) = [row for row in json.loads(result.stdout) if row["precision"] == "int8"]
    layers = row["layers"]
    assert [layer["int8"] for layer in layers] == [False, True, False]  # the MLP's three Gemms
    assert row["kept_float"] == [layers[0]["layer"], layers[-1]["layer"]]
    assert all(layer["weight_sqnr_db"] is None or layer["weight_sqnr_db"] > 20 for layer in layers if layer["int8"])
    assert "per-layer INT8 sensitivity" in result.stderr
    model = onnx.load(str(run / "generator.int8.onnx"))
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    gemms = [node for node in model.graph.node if node.op_type == "Gemm"]
    assert [producers.get(node.input[1]) == "DequantizeLinear" for node in gemms] == [False, True, False]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--calib", "32"], "--calib only applies with --int8"),
        (["--int8-report", "--force-int8"], "--int8-report, --force-int8 only apply with --int8"),
        (["--int8", "--calib", "2"], "--calib must be at least 8"),
        (["--int8", "--int8-exclude", ","], "--int8-exclude takes first, last or layer names"),
        (["--int8", "--calib-data", "missing.npy"], "--calib-data missing.npy does not exist"),
    ],
)
def test_bad_int8_flags_are_usage_errors_before_anything_is_written(cli, tmp_path: Path, flags, words) -> None:
    run = digits_gan(tmp_path / "run")
    result = cli("export", run, *flags)
    assert result.exit_code == 2 and words in result.stderr, result.stderr
    assert sorted(p.name for p in run.iterdir()) == ["generator.safetensors"]


def test_an_unknown_layer_or_the_wrong_calibration_data_is_refused(exported_gan: Path, cli, tmp_path: Path) -> None:
    run = copy_run(exported_gan, tmp_path / "run")
    images = tmp_path / "images"
    images.mkdir()
    wrong = cli("export", run, "--int8", "--calib-data", images)
    assert wrong.exit_code == 2 and "a GAN calibrates on latents" in wrong.stderr
    unknown = cli("export", run, "--int8", "--int8-exclude", "nope", *VERDICT_N)
    assert unknown.exit_code == 2 and "has no such layer (first, last, or one of: node_linear" in unknown.stderr
    onnx_file = cli("export", run / "generator.onnx", "--int8", "--trt")
    assert onnx_file.exit_code == 2 and "--int8 quantizes from the checkpoint" in onnx_file.stderr


def test_auto_picks_int8_only_with_a_passing_verdict_for_this_checkpoint(int8_gan, tmp_path: Path) -> None:
    run = copy_run(int8_gan[0], tmp_path / "run")
    found = registry.candidates(run, None, "auto", None, NO_GPU)
    assert [(c.name, c.precision) for c in found] == [
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
        ("torch", "fp32"),
    ]
    int8 = found[1]
    assert int8.quality.startswith("quality verdict: no measurable loss, KID Δ")
    assert "found generator.int8.onnx" in int8.reason

    digits_gan(run, seed=1)  # retrained: the verdict was for other weights
    for path in run.glob("*.onnx"):
        path.touch()  # even when the files look fresh
    assert [c.precision for c in registry.candidates(run, None, "auto", None, NO_GPU)] == ["fp32", "fp32"]
    asked = registry.candidates(run, None, "auto", "int8", NO_GPU)  # asked for by name: used, verdict or not
    assert [(c.name, c.precision) for c in asked] == [("onnxruntime", "int8")]


def test_auto_says_how_much_faster_int8_was_and_what_its_verdict_said() -> None:
    from gantool.runtime.autocache import Figure
    from gantool.runtime.autoselect import _reason

    int8 = registry.Choice(
        "onnxruntime", "cpu", "int8", "", quality="quality verdict: no measurable loss, KID Δ -0.01 vs real"
    )
    fp32 = registry.Choice("onnxruntime", "cpu", "fp32", "")
    torch = registry.Choice("torch", "cpu", "fp32", "")
    figures = {
        "onnxruntime/cpu/int8": Figure(1.0, 0.1, 9),
        "onnxruntime/cpu/fp32": Figure(2.0, 0.1, 9),
        "torch/cpu/fp32": Figure(5.0, 0.1, 9),
    }
    reason = _reason(int8, [int8, fp32, torch], figures, 64, True, {}, "on cpu: --device cpu")
    assert reason.startswith(
        "onnxruntime int8 on cpu (auto: 2.0x fp32; quality verdict: no measurable loss, KID Δ -0.01 vs real; "
        "measured now at batch 64: 1 ms/batch vs onnxruntime fp32 2 ms, torch fp32 5 ms"
    ), reason


def test_generate_runs_the_int8_file_when_asked_and_auto_never_blind(int8_gan, cli, tmp_path: Path) -> None:
    run = int8_gan[0]
    asked = cli("generate", run, "-n", "8", "--precision", "int8", "--out", tmp_path / "asked")
    assert asked.exit_code == 0, asked.stderr
    assert "backend: onnxruntime (auto: found generator.int8.onnx" in asked.stderr
    assert "onnxruntime on cpu, int8" in asked.stderr and len(list((tmp_path / "asked").glob("*.png"))) == 8
    auto = cli("generate", run, "-n", "8", "--out", tmp_path / "auto")
    assert auto.exit_code == 0, auto.stderr
    chosen = next(line for line in auto.stderr.splitlines() if line.startswith("backend: "))
    winner = chosen.split(" (auto:")[0]  # "backend: onnxruntime on cpu", or "... int8 on cpu" when it was fastest
    assert "int8" not in winner or "quality verdict: no measurable loss" in chosen, chosen  # speed picks, never blind
    assert "onnxruntime int8" in chosen  # it was a candidate: timed beside the FP32 ones
