"""``gantool eval`` as a user runs it: tiny random models on the CPU, the bundled digits extractor, verdicts explained.

A random generator draws nothing like a digit, so no test here says a model is
good: they check what a report holds (floors at the same N, a verdict per
backend, the digit classifier's readings, refusals in one line), and that the
verdict logic gives the known answer on hand-made cases.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import make_checkpoint, make_translator_run, tiny_translator_spec
from gantool.benchmarks.quality.digits_extractor import WEIGHTS_NAME, DigitsExtractor
from gantool.benchmarks.quality.evaluate import Evaluation, Runner, evaluate_samples, verdict
from gantool.benchmarks.quality.features import FeatureReader
from gantool.benchmarks.quality.inception import INCEPTION_SHA256
from gantool.benchmarks.quality.real_data import RealSet

DIGITS = ["--extractor", "digits"]  # auto would pick Inception for 8×8 images: far too slow for a test
CPU = ["--device", "cpu"]  # the backends: the same rows on a machine with a GPU
SCORES = ("fid", "kid", "kid_std", "pr_precision", "pr_recall", "density", "coverage")
SUMMARY = ("n", "class_shares", "min_class_share", "entropy_bits", "mean_confidence")


@cache
def sklearn_digits() -> np.ndarray:
    """scikit-learn's 1,797 raw 8×8 digits (levels 0..16) scaled ×15: uint8 N×8×8×1, the tiny MLP's size."""
    from sklearn.datasets import load_digits

    return (load_digits().images * 15).astype(np.uint8)[..., None]


@pytest.fixture(scope="module")
def real_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 real 8×8 grey digits as ``--real`` takes them: an .npz holding uint8 N×H×W×C ``images``."""
    path = tmp_path_factory.mktemp("real") / "digits300.npz"
    np.savez(path, images=sklearn_digits()[:300])
    return path


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir with a tiny random 8×8 MLP generator, checkpoint only (never exported: see the backends test)."""
    return make_checkpoint(tmp_path_factory.mktemp("gan") / "run").parent


@pytest.fixture(scope="module")
def digits_m_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CycleGAN run dir whose specs say it learnt digits-m: eval finds the test splits itself."""
    import torch

    from gantool.artifacts import DIRECTIONS, checkpoint_in
    from gantool.checkpoint import save_generator
    from gantool.models import build_generator

    run = tmp_path_factory.mktemp("cyclegan") / "run"
    run.mkdir()
    for seed, direction in enumerate(DIRECTIONS):
        spec = replace(tiny_translator_spec(direction), provenance={"dataset": "digits-m"})
        torch.manual_seed(seed)
        save_generator(build_generator(spec).eval(), spec, checkpoint_in(run, direction))
    return run


def eval_json(cli, out: Path, *args: Any) -> tuple[dict[str, Any], Any]:
    """``gantool eval ARGS --json OUT``: the saved report and the CLI result."""
    result = cli("eval", *args, "--json", out)
    assert result.exit_code == 0, result.stderr
    return json.loads(out.read_text()), result


def by_kind(evaluation: dict[str, Any], kind: str, against: str = "real") -> list[dict[str, Any]]:
    return [row for row in evaluation["rows"] if row["kind"] == kind and row["against"] == against]


def check_summary(summary: dict[str, Any]) -> None:
    """A digit classifier's reading of one set: ten class shares summing to 1, entropy in [0, log2 10] bits."""
    assert set(SUMMARY) <= set(summary)
    assert len(summary["class_shares"]) == 10 and sum(summary["class_shares"]) == pytest.approx(1, abs=1e-3)
    assert summary["min_class_share"] == pytest.approx(min(summary["class_shares"]), abs=1e-4)
    assert 0 <= summary["entropy_bits"] <= np.log2(10) + 1e-9 and 0.1 <= summary["mean_confidence"] <= 1


# --- a GAN generator against --real ---------------------------------------------------------------------------------


def test_a_gan_against_real_images_gives_floor_and_samples_rows_json_and_png(
    cli, gan_run: Path, real_npz: Path, tmp_path: Path
) -> None:
    plot = tmp_path / "eval.png"
    report, result = eval_json(cli, tmp_path / "eval.json", gan_run, "--real", real_npz, "-n", 200, *DIGITS, *CPU,
                               "--plot", plot)  # fmt: skip
    bundled = hashlib.sha256((files("gantool.benchmarks.quality") / WEIGHTS_NAME).read_bytes()).hexdigest()
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"extractor: digits (sha256 {bundled}, 128-d, on ")  # cpu, or cuda with a GPU
    assert any(line.startswith("real (other half)  real     floor") for line in lines)
    assert any(line.split()[:4] == ["samples", "real", "torch", "fp32"] for line in lines)
    assert f"saved {plot}" in result.stderr and plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    assert report["format"] == "gantool-eval" and report["version"] == 1
    assert report["extractor"]["name"] == "digits" and report["extractor"]["sha256"] == bundled
    assert report["extractor"]["dim"] == 128 and set(report["extractor"]["test_accuracy"]) >= {"plain"}
    assert report["command"].startswith(f"gantool eval {gan_run} -n 200 --extractor digits ")
    assert f"--real {real_npz}" in report["command"]  # the saved command reruns the same evaluation
    (evaluation,) = report["evaluations"]
    assert evaluation["model"] == str(gan_run) and evaluation["direction"] is None and evaluation["verdicts"] == []
    (floor,), (samples,) = by_kind(evaluation, "floor"), by_kind(evaluation, "model")
    # 300 real images: one half is the reference, the other half the floor, so distances hold at N = 150, not 200
    (note,) = evaluation["notes"]
    assert note.startswith("distances use N = 150: half of the 300 real images, so that the real-vs-real floor")
    assert note in result.stdout
    assert (floor["set"], samples["set"]) == ("real (other half)", "samples")
    for row in (floor, samples):
        assert all(isinstance(row[key], float) for key in SCORES), row
        assert (row["n"], row["n_reference"]) == (150, 150)
        assert 0 <= row["pr_precision"] <= 1 and 0 <= row["pr_recall"] <= 1 and 0 <= row["coverage"] <= 1
    assert (samples["backend"], samples["precision"], samples["device"]) == ("torch", "fp32", "cpu")
    assert samples["vs_floor"] == pytest.approx(samples["fid"] - floor["fid"])
    assert samples["fid"] > floor["fid"]  # random weights are far from real digits; two halves of real ones are not

    real_reading, sample_reading = evaluation["classifier"]
    assert (real_reading["set"], real_reading["n"]) == (str(real_npz), 300)
    assert (sample_reading["set"], sample_reading["n"], sample_reading["backend"]) == ("torch fp32 cpu", 200, "torch")
    for summary in (real_reading, sample_reading):
        check_summary(summary)
        assert "keeps_label" not in summary  # --real images come without labels
    assert "digit classifier:" in result.stdout


def test_enough_real_images_leave_n_as_asked_and_the_cache_serves_them_the_second_time(
    cli, gan_run: Path, real_npz: Path, tmp_path: Path
) -> None:
    args = [gan_run, "--real", real_npz, "-n", 100, *DIGITS, *CPU]
    first, result = eval_json(cli, tmp_path / "first.json", *args)
    assert "from the cache" not in result.stderr  # each test starts with an empty cache
    (evaluation,) = first["evaluations"]
    assert evaluation["notes"] == [] and {row["n"] for row in evaluation["rows"]} == {100}

    second, result = eval_json(cli, tmp_path / "second.json", *args)
    assert f"real features from the cache: {real_npz}" in result.stderr
    assert second["evaluations"] == first["evaluations"]  # the same numbers, every one

    result = cli("eval", *args, "--no-cache")
    assert result.exit_code == 0 and "from the cache" not in result.stderr


# --- backends and precisions, each judged against FP32 PyTorch -----------------------------------------------------


def test_each_exported_backend_and_precision_gets_a_verdict_against_fp32_torch(
    cli, real_npz: Path, tmp_path: Path
) -> None:
    run = make_checkpoint(tmp_path / "run").parent
    exported = cli("export", run)
    assert exported.exit_code == 0, exported.stderr
    assert (run / "generator.onnx").is_file() and (run / "generator.fp16.onnx").is_file()
    report, result = eval_json(cli, tmp_path / "eval.json", run, "--real", real_npz, "-n", 200, *DIGITS, *CPU,
                               "--backends", "torch,onnxruntime", "--precisions", "fp32,fp16")  # fmt: skip
    (evaluation,) = report["evaluations"]
    models = by_kind(evaluation, "model")
    # torch fp32 first, as the reference; torch fp16 is not offered on the CPU, and a note says so
    assert [(row["backend"], row["precision"]) for row in models] == [
        ("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16"),
    ]  # fmt: skip
    assert evaluation["notes"][0] == "torch fp16: skipped (fp16 on the torch backend needs --device cuda)"
    assert "note: torch fp16: skipped" in result.stdout
    judged = {(v["backend"], v["precision"]): v for v in evaluation["verdicts"]}
    assert list(judged) == [("onnxruntime", "fp32"), ("onnxruntime", "fp16")]  # every one but the reference

    # the model-vs-model floor: FP32 torch on other latents, at the same N
    (real_floor,) = by_kind(evaluation, "floor")
    (model_floor,) = by_kind(evaluation, "floor", "fp32 torch")
    assert model_floor["set"] == "FP32 torch, independent inputs" and model_floor["n"] == real_floor["n"] == 150
    outputs = {(row["backend"], row["precision"]): row for row in by_kind(evaluation, "model", "fp32 torch")}
    assert set(outputs) == set(judged)
    # onnxruntime FP32 matches torch within 1e-6: the same pixels, so no distance at all next to the floor's
    ort = judged["onnxruntime", "fp32"]
    assert ort["verdict"].startswith("no measurable loss: ") and ort["measurable"] is False
    assert outputs["onnxruntime", "fp32"]["fid"] < 1e-6 < model_floor["fid"]
    for found in judged.values():
        assert found["verdict"].startswith(("no measurable loss: ", "measurably different: "))
        assert found["measurable"] is found["verdict"].startswith("measurably")
        assert f"{found['backend']} {found['precision']} {found['device']}: {found['verdict']}" in result.stdout
    assert "--backends torch,onnxruntime --precisions fp32,fp16" in report["command"]


def test_auto_picking_a_backend_already_asked_for_evaluates_it_once(cli, gan_run: Path, real_npz: Path) -> None:
    """No ONNX export: auto can only pick torch fp32, the reference itself, which is then not judged against itself."""
    result = cli("eval", gan_run, "--real", real_npz, "-n", 50, *DIGITS, *CPU, "--precisions", "fp32,fp16")
    assert result.exit_code == 0, result.stderr
    assert [line.split()[2] for line in result.stdout.splitlines() if line.startswith("samples")] == ["torch"]
    assert "note: auto fp32: skipped (it is torch fp32 cpu, already evaluated)" in result.stdout
    assert "note: auto fp16: skipped (" in result.stdout and "no measurable loss" not in result.stdout


# --- the verdict logic on cases whose answer is known ---------------------------------------------------------------


def test_an_exact_copy_is_no_loss_and_noise_is_measurably_different() -> None:
    """Hand-made runners: 'latents' (seed, n) pick n real digits; the copy returns the same ones, noise returns noise.

    Neither copy nor noise is a model: this is the verdict logic alone, on the bundled digits extractor.
    """
    digits = sklearn_digits()
    real, pool = RealSet(digits[:400], "digits 0..399"), digits[400:]

    def reference(latents: tuple[int, int]) -> np.ndarray:
        seed, n = latents
        return pool[np.random.default_rng(seed).choice(len(pool), n, replace=False)]

    def noise(latents: tuple[int, int]) -> np.ndarray:
        seed, n = latents
        return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)

    runners = [
        Runner("torch", "fp32", "cpu", reference),
        Runner("copy", "fp32", "cpu", lambda latents: reference(latents).copy()),
        Runner("noise", "fp32", "cpu", noise),
    ]
    evaluation = Evaluation("hand-made", None)
    reader = FeatureReader(DigitsExtractor())
    evaluate_samples(evaluation, runners, reader, real, 200, 0, lambda seed, n: (seed, n), None)

    copy, noisy = evaluation.verdicts
    assert (copy["backend"], copy["measurable"]) == ("copy", False)
    assert copy["verdict"].startswith("no measurable loss: FID vs FP32 0 ≤ floor ")
    assert (noisy["backend"], noisy["measurable"], noisy["worse"]) == ("noise", True, True)
    assert copy["worse"] is False
    assert noisy["verdict"].startswith("measurably different: FID vs FP32 ")
    assert "FID vs real" in noisy["verdict"]  # and how much worse it is against real data
    outputs = {row["backend"]: row for row in evaluation.rows if row["set"] == "outputs"}  # each vs FP32 torch
    floor = next(row for row in evaluation.rows if row["set"] == "FP32 torch, independent inputs")
    assert outputs["copy"]["fid"] < 1e-6 < floor["fid"] < outputs["noise"]["fid"]
    assert evaluation.notes == []  # 200 of the 400 real digits: N stays 200
    readings = [summary["set"] for summary in evaluation.classifier]  # no classifier_reference: samples only
    assert readings == ["torch fp32 cpu", "copy fp32 cpu", "noise fp32 cpu"]


def test_a_verdict_says_which_distance_passed_the_floor_and_which_did_not() -> None:
    floor = {"fid": 0.05, "kid": 0.0, "kid_std": 0.1}
    vs_real, real_reference = {"fid": 12.0}, {"fid": 10.0}
    assert verdict({"fid": 0.01, "kid": 0.1}, floor, vs_real, real_reference) == (
        "no measurable loss: FID vs FP32 0.01 ≤ floor 0.05, KID 0.1 ≤ 0.2"
    )
    assert verdict({"fid": 0.01, "kid": 5.0}, floor, vs_real, real_reference) == (  # the FID alone would pass
        "measurably different: FID vs FP32 0.01 ≤ floor 0.05, KID 5 > 0.2; FID vs real 10 → 12 (+20.0%)"
    )
    assert verdict({"fid": 0.5, "kid": 0.1}, floor, vs_real, real_reference) == (
        "measurably different: FID vs FP32 0.5 > floor 0.05; FID vs real 10 → 12 (+20.0%)"
    )


# --- a CycleGAN run dir ---------------------------------------------------------------------------------------------


def test_a_cyclegan_run_dir_evaluates_both_directions_on_digits_m_and_one_with_direction(
    cli, digits_m_run: Path, tmp_path: Path
) -> None:
    report, result = eval_json(cli, tmp_path / "both.json", digits_m_run)
    assert report["extractor"]["name"] == "digits"  # auto: digits-m is digit data, whatever its size
    assert [found["direction"] for found in report["evaluations"]] == ["a2b", "b2a"]
    for found, source, target in zip(report["evaluations"], "AB", "BA"):
        (floor,), (translations,) = by_kind(found, "floor"), by_kind(found, "model")
        # translated test images of one domain against the other domain's test images; the floor: as many
        # of the target's training images against the same test images
        assert floor["set"] == f"digits-m train{target}" and translations["set"] == "translations"
        assert translations["n"] == floor["n"] and translations["n_reference"] == floor["n_reference"]
        assert all(isinstance(translations[key], float) for key in (*SCORES, "cycle_mae", "cycle_psnr"))
        assert 0 < translations["cycle_mae"] < 255
        source_reading, reading = found["classifier"]
        assert source_reading["set"] == f"digits-m test{source}" and source_reading["n"] == translations["n"]
        assert source_reading["keeps_label"] > 0.9  # the classifier reads the held-out digits themselves well
        assert reading["backend"] == "torch" and reading["n"] == translations["n"]
        for summary in (source_reading, reading):
            check_summary(summary)
        assert 0 <= reading["keeps_label"] <= 1 and 0 <= reading["cycle_keeps_label"] <= 1
        assert found["verdicts"] == [] and found["notes"] == []
    assert result.stdout.count("digits-m train") == 2 and "after cycle" in result.stdout

    one, result = eval_json(cli, tmp_path / "b2a.json", digits_m_run, "--direction", "b2a")
    (alone,) = one["evaluations"]
    assert alone == report["evaluations"][1]  # b2a alone: the same figures as beside a2b
    assert "--direction b2a" in one["command"]
    assert "real features from the cache: digits-m testA, digits-m trainA" in result.stderr


# --- refusals: one line on stderr, the right exit status, nothing written -------------------------------------------


@pytest.mark.parametrize(
    ("make_args", "code", "message"),
    [
        pytest.param(lambda run, real, tmp: [tmp / "nowhere", "--real", real], 2, "nowhere does not exist",
                     id="missing MODEL"),
        pytest.param(lambda run, real, tmp: [run, "--real", real, "--extractor", "bogus"], 2,
                     "--extractor must be one of digits, inception, got 'bogus'", id="unknown extractor"),
        pytest.param(lambda run, real, tmp: [run, "--real", real, *DIGITS, "--direction", "a2b"], 2,
                     "--direction applies to CycleGAN translators only", id="--direction on a GAN"),
        pytest.param(lambda run, real, tmp: [run, "--real", real, *DIGITS, "--direction", "up"], 2,
                     "--direction must be one of a2b, b2a, got 'up'", id="unknown direction"),
        pytest.param(lambda run, real, tmp: [run, *DIGITS], 2, "pass --real", id="no known dataset, no --real"),
        pytest.param(lambda run, real, tmp: [run, "--real", tmp / "real.txt", *DIGITS], 2,
                     "expected a folder of images or an .npz file", id="--real not an npz"),
        pytest.param(lambda run, real, tmp: [run, "--real", tmp / "array.npz", *DIGITS], 2,
                     "holds one .npy array, not an .npz archive", id="--real an npy"),
        pytest.param(lambda run, real, tmp: [run, "--real", tmp / "empty.npz", *DIGITS], 2,
                     "not a readable .npz", id="--real empty"),
        pytest.param(lambda run, real, tmp: [run, "--real", real, "--plot", tmp / "plot.jpg", *DIGITS], 2,
                     "--plot writes a PNG", id="--plot not a png"),
        pytest.param(lambda run, real, tmp: [run, "--real", real, *DIGITS, "-n", 3], 2,
                     "Invalid value for '-n'", id="-n too small for the k-NN metrics"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_in_one_line(
    cli, gan_run: Path, real_npz: Path, tmp_path: Path, make_args: Any, code: int, message: str
) -> None:
    (tmp_path / "real.txt").write_text("not images")
    np.save(tmp_path / "array.npy", sklearn_digits()[:20])
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")  # np.load goes by content, not by name
    (tmp_path / "empty.npz").write_bytes(b"")
    before = sorted(tmp_path.iterdir())
    result = cli("eval", "-n", 20, *make_args(gan_run, real_npz, tmp_path))
    assert result.exit_code == code and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_a_cyclegan_run_with_no_known_data_asks_for_real_folders(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_translator_run(tmp_path / "run")  # no dataset in its specs, no run.json
    monkeypatch.chdir(tmp_path)  # the working directory is not its data either
    result = cli("eval", run, *DIGITS)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: {run}: cannot find its data (unknown): pass --real DIR with testA/ testB/\n"
    (tmp_path / "data" / "trainA").mkdir(parents=True)
    result = cli("eval", run, *DIGITS, "--real", tmp_path / "data")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: --real {tmp_path / 'data'}: has no trainB/, testA/, testB/\n"


def test_a_translator_file_is_not_evaluated_as_the_other_direction(cli, tmp_path: Path) -> None:
    run = make_translator_run(tmp_path / "run")
    result = cli("eval", run / "generator_a2b.safetensors", "--direction", "b2a", *DIGITS)
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert "is the a2b translator, not b2a" in result.stderr


def test_real_images_of_the_wrong_size_are_refused(cli, gan_run: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "big.npz"
    np.savez(wrong, images=np.zeros((50, 16, 16, 1), dtype=np.uint8))
    result = cli("eval", gan_run, "--real", wrong, *DIGITS, "-n", 20)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr == f"error: --real {wrong}: expected uint8 images N×8×8×1, got uint8 (50, 16, 16, 1)\n"


def test_an_existing_json_is_kept_without_force(cli, gan_run: Path, real_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    out.write_text("old")
    result = cli("eval", gan_run, "--real", real_npz, *DIGITS, "-n", 20, "--json", out)
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert "already exists (use --force to overwrite)" in result.stderr and out.read_text() == "old"


def test_inception_weights_that_are_not_the_known_file_are_never_loaded(
    cli, gan_run: Path, real_npz: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "pt_inception.pt"
    wrong.write_bytes(b"not the FID Inception")
    result = cli("eval", gan_run, "--real", real_npz, "--extractor", "inception", "--inception-weights", wrong)
    assert result.exit_code == 1 and result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {wrong} is 21 bytes") and INCEPTION_SHA256 in result.stderr
    assert "refusing to load it" in result.stderr
