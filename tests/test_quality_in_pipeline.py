"""Quality where the pipeline needs it: ``train --eval-every``, ``train --tensorboard``, ``export --quality-check``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import tiny_gan_spec

TINY = ["--hidden", "16,32", "--batch-size", "128"]  # the bundled digits, a tiny MLP: about a second an epoch


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_eval_every_logs_kid_fid_and_the_classifier_on_the_epochs_asked_and_the_last(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", "gan", "--out", run, "--epochs", "3", "--eval-every", "2", "--eval-samples", "60", *TINY)
    assert result.exit_code == 0, result.stderr
    lines = metrics(run)
    assert [("kid" in line) for line in lines] == [False, True, True]  # epoch 2, and epoch 3 (the last)
    for line in lines[1:]:
        assert line["kid_std"] >= 0 and line["fid"] > line["fid_floor"] > 0  # an untrained MLP is far from real
        assert 0 < line["confidence"] <= 1 and 0 <= line["min_class_share"] <= 1
    assert "kid" in result.stderr + result.stdout  # shown on the epoch's progress line


def test_eval_every_on_a_cyclegan_reports_both_directions_and_whether_the_digit_is_kept(cli, tmp_path: Path) -> None:
    run = tmp_path / "cg"
    options = ["--size", "24", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--batch-size", "64"]
    result = cli(
        "train", "cyclegan", "--out", run, "--epochs", "1", "--epochs-decay", "0", "--eval-every", "1", *options
    )
    assert result.exit_code == 0, result.stderr
    (line,) = metrics(run)
    for direction in ("a2b", "b2a"):
        assert line[f"kid_{direction}"] == pytest.approx(line[f"kid_{direction}"])  # a number
        assert 0 <= line[f"keeps_digit_{direction}"] <= 1


def test_tensorboard_writes_the_losses_the_eval_figures_and_the_sample_grids(cli, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    result = cli("train", "gan", "--out", run, "--epochs", "2", "--eval-every", "1", "--eval-samples", "60",
                 "--tensorboard", *TINY)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/loss_d", "loss/loss_g", "discriminator/D(x)", "discriminator/D(G(z))", "quality/kid"} <= scalars
    assert [event.step for event in events.Scalars("quality/kid")] == [1, 2]
    assert events.Tags()["images"] == ["samples"]


def test_tensorboard_without_the_extra_is_refused_before_anything_is_written(cli, tmp_path, monkeypatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a)
    )
    result = cli("train", "gan", "--out", tmp_path / "run", "--epochs", "1", "--tensorboard", *TINY)
    assert result.exit_code == 2
    assert "pip install 'gantool[tensorboard]'" in result.stderr
    assert not (tmp_path / "run").exists()


def digits_generator(run: Path) -> Path:
    """A tiny random MLP generator at 28×28 whose spec says it learnt the bundled digits."""
    import torch

    from gantool.artifacts import checkpoint_in
    from gantool.checkpoint import save_generator
    from gantool.models import build_generator

    spec = replace(tiny_gan_spec(), height=28, width=28, provenance={"dataset": "digits"})
    torch.manual_seed(0)
    run.mkdir(parents=True)
    save_generator(build_generator(spec).eval(), spec, checkpoint_in(run))
    return run


def test_export_quality_check_passes_when_fp16_keeps_the_quality(cli, tmp_path: Path) -> None:
    run = digits_generator(tmp_path / "run")
    result = cli("export", run, "--quality-check", "100")
    assert result.exit_code == 0, result.stderr
    assert "onnxruntime fp16 cpu: no measurable loss" in result.stderr
    assert "quality check: no measurable loss in any exported file" in result.stderr
    assert (run / "generator.onnx").is_file() and (run / "generator.fp16.onnx").is_file()


def test_export_quality_check_that_fails_removes_the_new_files(cli, tmp_path: Path, monkeypatch) -> None:
    import numpy as np

    from gantool.benchmarks.quality import run as quality_run
    from gantool.data import load_digits_mnist_style

    digits = load_digits_mnist_style()

    def broken_fp16(generator, batch_size):
        """FP32 files that draw real digits (other ones per seed), an FP16 file that lost the model: noise."""
        if generator.precision != "fp16":
            return lambda latents: digits[(latents[0] % 2) * 800 :][: latents[1]]
        return lambda latents: np.random.default_rng(0).integers(0, 256, (latents[1], 28, 28, 1), dtype=np.uint8)

    monkeypatch.setattr(quality_run, "_sampler", broken_fp16)
    run = digits_generator(tmp_path / "run")
    result = cli("export", run, "--quality-check", "100")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: quality check failed, removed the 2 new files") and "onnxruntime fp16" in last
    assert "onnxruntime fp32" not in last  # the FP32 file was fine; it goes too, with the export it belongs to
    assert not (run / "generator.onnx").exists() and not (run / "generator.fp16.onnx").exists()
    assert (run / "generator.safetensors").is_file()


def test_export_quality_check_needs_the_files_beside_their_checkpoint(cli, tmp_path: Path) -> None:
    run = digits_generator(tmp_path / "run")
    result = cli("export", run, "--quality-check", "100", "--out", tmp_path / "elsewhere")
    assert result.exit_code == 2
    assert "leave out --out" in result.stderr
    assert not (tmp_path / "elsewhere").exists()
