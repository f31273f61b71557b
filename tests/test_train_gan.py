"""`gantool train gan`: tiny networks for an epoch or two, on the bundled digits or a folder of a few images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantool.checkpoint import load_generator, read_spec
from gantool.images import grid, to_uint8
from gantool.latents import latent_batch

TINY = ["--hidden", "16,32", "--latent-dim", "8", "--device", "cpu"]  # milliseconds per step


def image_folder(root: Path, count: int = 24, mode: str = "L", size: int = 12) -> Path:
    """A folder of small random-blob images, the layout a user's own data comes in."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(count):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / f"img_{i:02d}.png")
    return root


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "generator.safetensors"))


def test_digits_run_writes_checkpoint_state_metrics_and_grid(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = cli("train", "gan", "--out", run, "--epochs", "2", "--batch-size", "256", "--seed", "3", *TINY)
    assert result.exit_code == 0, result.stderr
    assert "trained 2/2 epochs" in result.stdout

    spec = read_spec(run / "generator.safetensors")
    assert (spec.kind, spec.arch, spec.arch_params, spec.latent_dim) == ("gan", "mlp", {"hidden": [16, 32]}, 8)
    assert spec.image_shape == (1, 28, 28) and spec.value_range == (-1.0, 1.0)
    assert spec.provenance["dataset"] == "digits" and spec.provenance["epochs"] == 2
    assert spec.provenance["seed"] == 3 and spec.provenance["loss"] == "nonsaturating"

    records = metrics(run)
    assert [r["epoch"] for r in records] == [1, 2] and records[-1]["steps"] == 2 * (1797 // 256)
    assert set(records[0]) == {"epoch", "steps", "loss_d", "loss_g", "d_real", "d_fake", "seconds"}
    assert 0 < records[-1]["d_real"] < 1 and 0 < records[-1]["d_fake"] < 1
    assert json.loads((run / "run.json").read_text())["seed"] == 3

    import torch

    state = torch.load(run / "train_state.pt", weights_only=True)
    assert state["epoch"] == 2 and set(state) >= {"generator", "discriminator", "opt_g", "opt_d", "rng", "average"}
    saved = weights(run)  # the checkpoint holds the averaged generator, not the last raw one
    assert all(np.array_equal(saved[name], tensor.numpy()) for name, tensor in state["average"].items())
    assert not all(np.array_equal(saved[name], tensor.numpy()) for name, tensor in state["generator"].items())

    # The last grid is exactly samples 0..63 of --seed 3 from the saved checkpoint.
    module, _ = load_generator(run / "generator.safetensors")
    with torch.no_grad():
        images = module(torch.from_numpy(latent_batch(3, 0, 64, 8))).numpy()
    expected = grid(to_uint8(images, spec.value_range))[:, :, 0]
    assert np.array_equal(np.asarray(Image.open(run / "samples" / "epoch_0002.png")), expected)
    assert (run / "samples" / "epoch_0001.png").is_file()


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(cli, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    common = ["--dataset", data, "--image-size", "8", "--batch-size", "8", "--seed", "5", *TINY]
    assert cli("train", "gan", "--out", tmp_path / "whole", "--epochs", "2", *common).exit_code == 0
    assert cli("train", "gan", "--out", tmp_path / "split", "--epochs", "1", *common).exit_code == 0
    result = cli("train", "gan", "--out", tmp_path / "split", "--epochs", "2", "--resume")  # settings come from the run
    assert result.exit_code == 0, result.stderr

    whole, split = weights(tmp_path / "whole"), weights(tmp_path / "split")
    assert all(np.array_equal(whole[name], split[name]) for name in whole)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in metrics(tmp_path / "whole")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in metrics(tmp_path / "split")]


def test_resume_refuses_changed_settings_and_finished_runs(cli, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["--dataset", data, "--image-size", "8", "--batch-size", "8", "--epochs", "1", *TINY]
    assert cli("train", "gan", "--out", run, *args).exit_code == 0
    changed = cli("train", "gan", "--out", run, "--resume", "--epochs", "2", "--lr", "0.01")
    assert changed.exit_code == 2 and "--lr 0.01 differs" in changed.stderr
    finished = cli("train", "gan", "--out", run, "--resume", "--epochs", "1")
    assert finished.exit_code == 2 and "already trained 1 epochs" in finished.stderr
    assert len(metrics(run)) == 1


def test_the_mlp_discriminator_sees_how_much_each_batch_varies() -> None:
    import torch

    from gantool.models import MLPDiscriminator

    torch.manual_seed(0)
    plain, seeing = MLPDiscriminator([8, 16], (1, 4, 4), 0.0), MLPDiscriminator([8, 16], (1, 4, 4), 0.0, True)
    last = seeing.net[-1]  # N×(8+1) → N×1: the extra input is the batch's spread
    assert (plain.net[-1].in_features, last.in_features) == (8, 9)
    with torch.no_grad():
        last.weight.zero_(), last.bias.zero_()
        last.weight[0, -1] = 1.0  # the logit is the spread alone
        same, varied = torch.ones(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
        assert plain(varied).shape == seeing(varied).shape == (5,)
        assert torch.equal(seeing(same), torch.zeros(5))  # five copies of one image: no spread
        assert (seeing(varied) > 0).all() and torch.equal(seeing(varied[:1]), torch.zeros(1))  # one image: none


def test_a_run_saved_before_the_minibatch_std_resumes_as_it_trained(cli, tmp_path: Path) -> None:
    import torch

    run = tmp_path / "run"
    args = ["--dataset", image_folder(tmp_path / "data"), "--image-size", "8", "--batch-size", "8", *TINY]
    assert cli("train", "gan", "--out", run, "--epochs", "1", "--no-minibatch-std", *args).exit_code == 0
    state = torch.load(run / "train_state.pt", weights_only=True)
    del state["config"]["minibatch_std"]  # what gantool wrote before the option existed
    torch.save(state, run / "train_state.pt")

    resumed = cli("train", "gan", "--out", run, "--epochs", "2", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert read_spec(run / "generator.safetensors").provenance["minibatch_std"] is False
    changed = cli("train", "gan", "--out", run, "--epochs", "3", "--resume", "--minibatch-std")
    assert changed.exit_code == 2 and "--minibatch-std True differs from its False" in changed.stderr


def test_resume_refuses_a_damaged_or_foreign_state(cli, tmp_path: Path) -> None:
    import torch

    run = tmp_path / "run"
    run.mkdir()
    (run / "train_state.pt").write_bytes(b"garbage")
    damaged = cli("train", "gan", "--out", run, "--resume", "--epochs", "2")
    assert damaged.exit_code == 1 and "not a readable gantool training state" in damaged.stderr
    torch.save({"format": "gantool.train_state", "path": Path("/")}, run / "train_state.pt")  # a pickled class
    foreign = cli("train", "gan", "--out", run, "--resume", "--epochs", "2")
    assert foreign.exit_code == 1 and foreign.stderr.count("\n") == 1 and "training state" in foreign.stderr


def test_minimax_loss_is_log_one_minus_d_of_fake(cli, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    result = cli(
        "train", "gan", "--out", run, "--dataset", data, "--image-size", "8", "--batch-size", "4",
        "--loss", "minimax", "--d-steps", "2", "--ema", "0", "--epochs", "1", *TINY,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [record] = metrics(run)
    assert record["loss_g"] < 0  # log(1 - D(G(z))) is negative
    assert record["steps"] == (24 // 4) // 2  # one generator step per two discriminator steps
    assert read_spec(run / "generator.safetensors").provenance["loss"] == "minimax"

    import torch

    state = torch.load(run / "train_state.pt", weights_only=True)  # --ema 0: the raw generator is published
    assert "average" not in state
    assert all(np.array_equal(weights(run)[name], tensor.numpy()) for name, tensor in state["generator"].items())


def test_dcgan_on_a_colour_folder_skips_unreadable_files(cli, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data", mode="RGB")
    (data / "broken.png").write_bytes(b"not a png")
    run = tmp_path / "run"
    result = cli(
        "train", "gan", "--out", run, "--dataset", data, "--arch", "dcgan", "--ngf", "4", "--image-size", "16",
        "--latent-dim", "8", "--batch-size", "8", "--epochs", "1", "--device", "cpu",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "warning: skipped 1 unreadable file" in result.stderr and "broken.png" in result.stderr
    spec = read_spec(run / "generator.safetensors")
    assert (spec.arch, spec.arch_params, spec.image_shape) == ("dcgan", {"ngf": 4}, (3, 16, 16))
    assert spec.provenance["dataset"] == "data"
    assert Image.open(run / "samples" / "epoch_0001.png").mode == "RGB"


def test_an_existing_run_is_kept_unless_forced(cli, tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "gan", "--out", run, "--dataset", data, "--image-size", "8", "--batch-size", "8", *TINY]
    assert cli(*args, "--epochs", "2").exit_code == 0
    (run / "generator.onnx").write_bytes(b"stale export")
    refused = cli(*args, "--epochs", "1")
    assert refused.exit_code == 2 and "--force" in refused.stderr and len(metrics(run)) == 2
    assert cli(*args, "--epochs", "1", "--force").exit_code == 0
    assert len(metrics(run)) == 1 and not (run / "generator.onnx").exists()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png"]


# Arguments after `train gan --out RUN`, the exit status, and a phrase of the one-line error.
BAD_INPUTS: dict[str, tuple[list[str], int, str]] = {
    "zero epochs": (["--epochs", "0"], 2, "--epochs"),
    "zero batch": (["--batch-size", "0"], 2, "--batch-size"),
    "negative lr": (["--lr", "-0.1"], 2, "positive learning rate"),
    "bad hidden": (["--hidden", "16,x"], 2, "comma-separated"),
    "unknown dataset": (["--dataset", "{tmp}/nowhere"], 2, "neither 'digits', 'mnist' nor a folder"),
    "empty folder": (["--dataset", "{tmp}/empty"], 2, "has no images"),
    "dataset is a file": (["--dataset", "{tmp}/afile"], 2, "is a file"),
    "truncated idx": (["--dataset", "mnist", "--data-dir", "{tmp}/idx"], 1, "truncated IDX file"),
    "mnist missing": (["--dataset", "mnist", "--data-dir", "{tmp}/empty"], 2, "--download"),
    "dcgan geometry": (["--arch", "dcgan", "--dataset", "{tmp}/data", "--image-size", "30"], 2, "--image-size"),
    "batch too big": (["--batch-size", "5000"], 2, "larger than the dataset"),
    "resume nothing": (["--resume"], 2, "cannot resume"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path: Path, case: str) -> None:
    image_folder(tmp_path / "data")
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "idx").mkdir()
    header = (0x803).to_bytes(4, "big") + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2  # promises 5 images
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(header + bytes(100))
    args, code, phrase = BAD_INPUTS[case]
    run = tmp_path / "run"
    result = cli("train", "gan", "--out", run, *TINY, *[arg.format(tmp=tmp_path) for arg in args])
    assert result.exit_code == code, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert phrase in result.stderr
    assert not run.exists()


def test_out_path_that_is_a_file_is_refused(cli, tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    result = cli("train", "gan", "--out", target, "--epochs", "1", *TINY)
    assert result.exit_code == 2 and "is a file" in result.stderr and target.read_text() == "keep me"


def test_cuda_without_a_gpu_is_a_usage_error(cli, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: --device cuda is valid here")
    result = cli("train", "gan", "--out", tmp_path / "run", "--device", "cuda", "--hidden", "16,32")
    assert result.exit_code == 2 and "no CUDA device" in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["gan", "--hidden", ",".join(["16384"] * 8)], "use smaller --hidden or --image-size"),
        (["cyclegan", "--ngf", "1024", "--blocks", "64"], "use smaller --ngf or --blocks"),
        (["cyclegan", "--size", "1000000"], "Invalid value for '--size'"),
    ],
)
def test_networks_too_big_to_train_are_refused_before_any_memory_is_spent(cli, tmp_path, args, said) -> None:
    run = tmp_path / "run"
    result = cli("train", *args, "--out", run, "--epochs", "1")
    assert result.exit_code == 2 and said in result.stderr and "Traceback" not in result.stderr
    assert not run.exists()
