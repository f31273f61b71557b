"""Training that loses nothing: Ctrl-C/SIGTERM save and resume bit-exactly, NaN stops cleanly, periodic saves rotate.

Interrupts are driven in-process and deterministically: a patched progress
``advance`` sends the signal to this process right after global step k, just as
a user's Ctrl-C would land during step k+1. One test sends a real SIGTERM to a
``python -m gantool`` subprocess.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_train_cyclegan import TINY as CYCLE_TINY
from test_train_cyclegan import unpaired_folder
from test_train_gan import TINY as GAN_TINY
from test_train_gan import image_folder

from gantool.training.progress import TrainProgress


def gan_args(data: Path, epochs: int = 3, *extra: str) -> list[str]:
    """24 images of 8×8 in batches of 8: three steps per epoch."""
    return [
        "--dataset",
        str(data),
        "--image-size",
        "8",
        "--batch-size",
        "8",
        "--epochs",
        str(epochs),
        *GAN_TINY,
        *extra,
    ]


def cyclegan_args(data: Path) -> list[str]:
    """max(4, 3) images in batches of 2: two steps per epoch, one epoch at the full rate and one decaying."""
    return ["--dataset", str(data), "--epochs", "1", "--epochs-decay", "1", "--batch-size", "2", "--pool-size", "2",
            *CYCLE_TINY]  # fmt: skip


def signal_after(monkeypatch: pytest.MonkeyPatch, steps: set[int], signum: int = signal.SIGINT) -> None:
    """Send ``signum`` to this process after each global step in ``steps``, counted over every run of the test.

    A resumed run continues right after the step its predecessor stopped at, so
    the count of ``advance`` calls is the global step.
    """
    count = itertools.count(1)
    advance = TrainProgress.advance

    def advance_then_signal(self: TrainProgress) -> None:
        advance(self)
        if next(count) in steps:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(TrainProgress, "advance", advance_then_signal)


def train_resuming(cli, model: str, run: Path, args: list[str], code: int = 130) -> list[str]:
    """Train ``run``, resuming after every interrupt until it finishes; returns each interrupted run's stderr."""
    messages = []
    result = cli("train", model, "--out", run, *args)
    while result.exit_code == code:
        messages.append(result.stderr)
        result = cli("train", model, "--out", run, "--resume")
    assert result.exit_code == 0, result.stderr
    return messages


def load(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, weights_only=True)


def assert_identical(a: Any, b: Any, where: str = "") -> None:
    """Every tensor equal bit for bit (torch.equal), every other value equal, at every depth."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{index}]")
    else:
        assert a == b, where


def assert_same_run(whole: Path, split: Path, checkpoints: list[str]) -> None:
    """Same final checkpoint(s), training state and metrics (timings aside) as the uninterrupted run."""
    import json

    for name in [*checkpoints, "train_state.pt"]:
        assert_identical(load(whole / name), load(split / name), name)

    def metrics(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    assert metrics(whole) == metrics(split)


@pytest.fixture(scope="module")
def gan_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_folder(tmp_path_factory.mktemp("gan") / "data")


@pytest.fixture(scope="module")
def gan_whole(gan_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three uninterrupted epochs (9 steps), k = 2 (a generator step on every second batch, summed per epoch)."""
    from typer.testing import CliRunner

    from gantool.cli import app

    run = tmp_path_factory.mktemp("gan") / "whole"
    result = CliRunner().invoke(app, ["train", "gan", "--out", str(run), *gan_args(gan_data, 3, "--d-steps", "2")])
    assert result.exit_code == 0, result.stderr
    return run


@pytest.mark.parametrize(
    ("steps", "where"),
    [({2}, "at epoch 1, step 2/3"), ({3}, "after epoch 1"), ({4, 5, 8}, "at epoch 2, step 1/3")],
    ids=["mid-epoch", "epoch-boundary", "three-times"],
)
def test_gan_interrupted_by_ctrl_c_resumes_bit_identically(
    cli, monkeypatch, tmp_path: Path, gan_data: Path, gan_whole: Path, steps: set[int], where: str
) -> None:
    before = signal.getsignal(signal.SIGINT)
    signal_after(monkeypatch, steps)
    run = tmp_path / "split"
    messages = train_resuming(cli, "gan", run, gan_args(gan_data, 3, "--d-steps", "2"))

    assert len(messages) == len(steps)
    last = messages[0].strip().splitlines()[-1]  # the one line, under the progress bar's last frame
    assert last == f"error: stopped by SIGINT {where}; saved {run}/train_state.pt; resume with: " + (
        f"gantool train gan --out {run} --resume"
    )
    assert "Traceback" not in "".join(messages) and signal.getsignal(signal.SIGINT) is before
    assert_same_run(gan_whole, run, ["generator.safetensors"])


def test_sigterm_exits_143_and_resumes_bit_identically(
    cli, monkeypatch, tmp_path: Path, gan_data: Path, gan_whole: Path
) -> None:
    signal_after(monkeypatch, {7}, signal.SIGTERM)
    run = tmp_path / "split"
    [message] = train_resuming(cli, "gan", run, gan_args(gan_data, 3, "--d-steps", "2"), code=143)
    assert "stopped by SIGTERM at epoch 3, step 1/3" in message
    assert_same_run(gan_whole, run, ["generator.safetensors"])


def test_a_second_ctrl_c_while_saving_is_ignored_until_the_save_is_done(
    cli, monkeypatch, tmp_path: Path, gan_data: Path, gan_whole: Path
) -> None:
    from gantool.training import checkpoints

    save_train_state = checkpoints.save_train_state

    def impatient_save(path: Path, state: dict[str, Any]) -> None:
        if state["global_step"] == 5:  # Ctrl-C again while saving the first one's step, before the state is written
            os.kill(os.getpid(), signal.SIGINT)
        save_train_state(path, state)

    signal_after(monkeypatch, {5})
    monkeypatch.setattr(checkpoints, "save_train_state", impatient_save)
    run = tmp_path / "split"
    result = cli("train", "gan", "--out", run, *gan_args(gan_data, 3, "--d-steps", "2"))
    assert result.exit_code == 130 and "stopped by SIGINT at epoch 2, step 2/3" in result.stderr
    monkeypatch.undo()
    assert cli("train", "gan", "--out", run, "--resume").exit_code == 0
    assert_same_run(gan_whole, run, ["generator.safetensors"])


def test_a_mid_epoch_state_refuses_data_that_batches_differently(cli, monkeypatch, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    signal_after(monkeypatch, {1})
    assert cli("train", "gan", "--out", run, *gan_args(data)).exit_code == 130
    image_folder(tmp_path / "more", count=8)
    for image in (tmp_path / "more").iterdir():
        image.rename(data / f"more_{image.name}")  # 32 images now: four batches an epoch instead of three
    result = cli("train", "gan", "--out", run, "--resume")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "stopped at step 1/3 of epoch 1, but its data now gives 4 steps per epoch" in result.stderr


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(steps=st.sets(st.integers(1, 8), min_size=1, max_size=3))
def test_gan_interrupted_at_any_steps_resumes_bit_identically(
    cli, tmp_path_factory, gan_data: Path, gan_whole: Path, steps: set[int]
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        signal_after(monkeypatch, steps)
        run = tmp_path_factory.mktemp("split") / "run"
        assert len(train_resuming(cli, "gan", run, gan_args(gan_data, 3, "--d-steps", "2"))) == len(steps)
    assert_same_run(gan_whole, run, ["generator.safetensors"])


@pytest.fixture(scope="module")
def cyclegan_whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The data (a folder: random crops and flips drawn per batch) and an uninterrupted 1 + 1 epoch run (4 steps)."""
    from typer.testing import CliRunner

    from gantool.cli import app

    data = unpaired_folder(tmp_path_factory.mktemp("cyclegan") / "data", count_a=4, count_b=3)
    run = tmp_path_factory.mktemp("cyclegan") / "whole"
    result = CliRunner().invoke(app, ["train", "cyclegan", "--out", str(run), *cyclegan_args(data)])
    assert result.exit_code == 0, result.stderr
    return data, run


@pytest.mark.parametrize("steps", [{1}, {2, 3}], ids=["mid-epoch", "epoch-boundary-then-mid-decay"])
def test_cyclegan_interrupted_resumes_bit_identically(
    cli, monkeypatch, tmp_path: Path, cyclegan_whole: tuple[Path, Path], steps: set[int]
) -> None:
    data, whole = cyclegan_whole
    signal_after(monkeypatch, steps)
    split = tmp_path / "split"
    messages = train_resuming(cli, "cyclegan", split, cyclegan_args(data))
    assert len(messages) == len(steps) and f"gantool train cyclegan --out {split} --resume" in messages[0]
    assert load(split / "train_state.pt")["pool_a"]["images"].shape[0] == 2  # the pools were full and swapping
    assert_same_run(whole, split, ["generator_a2b.safetensors", "generator_b2a.safetensors"])


def test_periodic_saves_keep_the_newest_and_resume_when_the_top_state_is_lost(
    cli, monkeypatch, tmp_path: Path, gan_data: Path
) -> None:
    args = gan_args(gan_data, 3, "--save-every", "2", "--keep", "2")
    assert cli("train", "gan", "--out", tmp_path / "whole", *args).exit_code == 0
    folder = tmp_path / "whole" / "checkpoints"
    assert sorted(path.name for path in folder.iterdir()) == ["step_0000006", "step_0000008"]  # 2 and 4 pruned
    for step in folder.iterdir():
        assert sorted(path.name for path in step.iterdir()) == ["generator.safetensors", "train_state.pt"]
    assert load(folder / "step_0000008" / "train_state.pt")["global_step"] == 8
    assert load(tmp_path / "whole" / "train_state.pt")["global_step"] == 9  # the top level is always the newest

    class PowerCut(Exception):
        pass

    advance = TrainProgress.advance
    count = itertools.count(1)

    def advance_then_die(self: TrainProgress) -> None:
        advance(self)
        if next(count) == 5:
            raise PowerCut  # no save, no cleanup: the process just ends after step 5

    monkeypatch.setattr(TrainProgress, "advance", advance_then_die)
    run = tmp_path / "split"
    with pytest.raises(PowerCut):
        cli("train", "gan", "--out", run, *args)
    monkeypatch.undo()
    (run / "train_state.pt").write_bytes(b"damaged")  # the top-level state is lost: the newest step folder takes over
    result = cli("train", "gan", "--out", run, "--resume")
    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr and "resuming from" in result.stderr and "step_0000004" in result.stderr
    assert_same_run(tmp_path / "whole", run, ["generator.safetensors"])


def test_a_nan_loss_stops_at_once_and_leaves_every_saved_file_as_it_was(
    cli, monkeypatch, tmp_path: Path, gan_data: Path
) -> None:
    run = tmp_path / "run"
    assert cli("train", "gan", "--out", run, *gan_args(gan_data, 1)).exit_code == 0
    saved = {path: path.read_bytes() for path in run.rglob("*") if path.is_file() and path.name != "run.json"}

    from gantool.training import gan

    batches = gan.epoch_batches

    def poisoned(*args: Any, **kwargs: Any):
        for index, batch in enumerate(batches(*args, **kwargs), start=1):
            yield batch * float("nan") if args[3] == 2 and index == 2 else batch  # epoch 2, step 2

    monkeypatch.setattr(gan, "epoch_batches", poisoned)
    result = cli("train", "gan", "--out", run, "--resume", "--epochs", "2")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: training diverged: loss_d, d_real, loss_g not finite at epoch 2, step 2/3; try a lower --lr"
    )
    assert last.endswith(f"({run} keeps its last good checkpoint, after epoch 1)") and "Traceback" not in result.stderr
    after = {path: path.read_bytes() for path in run.rglob("*") if path.is_file() and path.name != "run.json"}
    assert after == saved


def test_an_absurd_learning_rate_diverges_with_one_line_and_saves_nothing(cli, tmp_path: Path, gan_data: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", "gan", "--out", run, *gan_args(gan_data, 2, "--lr", "1e30", "--save-every", "1"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: training diverged: loss_g not finite at epoch 1, step 1/3; try a lower --lr "
        f"(no checkpoint was saved yet in {run})"
    )
    assert not (run / "train_state.pt").exists() and not (run / "generator.safetensors").exists()


def test_weights_broken_by_a_step_are_never_saved(cli, monkeypatch, tmp_path: Path, gan_data: Path) -> None:
    import torch

    from gantool.training.gan import GanTrainer

    g_step = GanTrainer.g_step

    def g_step_breaking_weights(self: GanTrainer) -> torch.Tensor:
        loss = g_step(self)  # a finite loss, but an update that left an infinite weight behind
        with torch.no_grad():
            next(self.generator.parameters()).view(-1)[0] = float("inf")
        return loss

    monkeypatch.setattr(GanTrainer, "g_step", g_step_breaking_weights)
    run = tmp_path / "run"
    result = cli("train", "gan", "--out", run, *gan_args(gan_data, 1, "--save-every", "1", "--ema", "0"))
    assert result.exit_code == 1 and "weights not finite at epoch 1, step 1/3" in result.stderr
    assert not (run / "train_state.pt").exists() and not (run / "checkpoints").exists()


def test_a_state_whose_weights_do_not_fit_its_config_is_refused(cli, tmp_path: Path, gan_data: Path) -> None:
    import torch

    run = tmp_path / "run"
    assert cli("train", "gan", "--out", run, *gan_args(gan_data, 1)).exit_code == 0
    state = torch.load(run / "train_state.pt", weights_only=True)
    state["config"]["hidden"] = [8]  # another model's config beside these weights
    torch.save(state, run / "train_state.pt")
    result = cli("train", "gan", "--out", run, "--resume", "--epochs", "2")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: training state does not fit this GAN")


def test_a_real_sigterm_stops_the_process_with_143_and_a_resumable_state(cli, tmp_path: Path, gan_data: Path) -> None:
    from gantool.training.state import load_train_state

    run = tmp_path / "run"
    command = [sys.executable, "-m", "gantool", "train", "gan", "--out", str(run),
               *gan_args(gan_data, 10_000, "--save-every", "1", "--keep", "1")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints").is_dir():  # the first periodic save: the loop is stepping
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: stopped by SIGTERM ") and last.endswith(f"gantool train gan --out {run} --resume")
    assert "Traceback" not in stderr

    state = load_train_state(run / "train_state.pt")
    assert [path.name for path in (run / "checkpoints").iterdir()] == [f"step_{state['global_step']:07d}"]
    result = cli("train", "gan", "--out", run, "--resume", "--epochs", str(state["epoch"] + 1))
    assert result.exit_code == 0, result.stderr
    assert f"trained {state['epoch'] + 1}/{state['epoch'] + 1} epochs" in result.stdout
