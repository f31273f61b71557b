"""`--amp`: autocast training, chosen per device, with the losses kept in FP32 and the fp16 scaler resumable."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_cyclegan import TINY as CYCLE_TINY
from test_train_cyclegan import unpaired_folder
from test_train_gan import TINY as GAN_TINY
from test_train_gan import metrics, weights
from test_train_interrupt import signal_after, train_resuming

from gantool.training.cyclegan import _lsgan
from gantool.training.precision import resolve_amp


def test_auto_is_fp32_on_the_cpu_bf16_on_a_gpu_that_has_it_and_fp16_on_one_that_has_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_amp("auto", torch.device("cpu")) == "off"
    assert resolve_amp("bf16", torch.device("cpu")) == "bf16"  # asked for: allowed, if slow on most CPUs
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert resolve_amp("auto", torch.device("cuda")) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert resolve_amp("auto", torch.device("cuda")) == "fp16"


def test_the_run_says_which_precision_it_chose(cli, tmp_path: Path) -> None:
    result = cli("train", "gan", "--out", tmp_path / "r", "--epochs", "1", "--batch-size", "256", *GAN_TINY)
    assert result.exit_code == 0, result.stderr
    assert "mixed precision: off (FP32) (auto on cpu)" in result.stderr
    options = json.loads((tmp_path / "r" / "run.json").read_text())
    assert (options["amp"], options["amp_resolved"], options["channels_last"]) == ("auto", "off", False)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_trains_both_models_with_fp32_weights(cli, tmp_path: Path, amp: str) -> None:
    gan = cli(
        "train", "gan", "--out", tmp_path / "gan", "--epochs", "2", "--batch-size", "256", "--amp", amp, *GAN_TINY
    )
    assert gan.exit_code == 0, gan.stderr
    assert f"mixed precision: {amp} autocast (--amp on cpu)" in gan.stderr
    assert all(np.isfinite(value) for record in metrics(tmp_path / "gan") for value in record.values())
    assert {array.dtype for array in weights(tmp_path / "gan").values()} == {np.dtype("float32")}

    data = unpaired_folder(tmp_path / "data")
    cycle = cli("train", "cyclegan", "--out", tmp_path / "cg", "--dataset", data, "--epochs", "1", "--epochs-decay",
                "0", "--batch-size", "2", "--amp", amp, *CYCLE_TINY)  # fmt: skip
    assert cycle.exit_code == 0, cycle.stderr
    assert json.loads((tmp_path / "cg" / "run.json").read_text())["amp_resolved"] == amp


def test_lsgan_compares_half_precision_logits_in_fp32() -> None:
    logits = torch.full((2, 1, 4, 4), 300.0, dtype=torch.float16)  # (300 − 0)² = 90000 overflows fp16's 65504
    loss = _lsgan(logits, 0.0)
    assert loss.dtype == torch.float32 and loss.item() == 90000.0


def test_fp16_resumes_bit_identically_with_its_gradient_scalers(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["--epochs", "2", "--batch-size", "256", "--amp", "fp16", *GAN_TINY]  # 7 steps per epoch
    assert cli("train", "gan", "--out", tmp_path / "whole", *args).exit_code == 0
    signal_after(monkeypatch, {3, 9}, signal.SIGINT)
    train_resuming(cli, "gan", tmp_path / "cut", args)
    import torch

    state = torch.load(tmp_path / "cut" / "train_state.pt", weights_only=True)
    assert set(state["amp"]) == {"g", "d"} and state["amp"]["d"]["scale"] > 0
    for name, tensor in weights(tmp_path / "whole").items():
        assert (weights(tmp_path / "cut")[name] == tensor).all(), name
