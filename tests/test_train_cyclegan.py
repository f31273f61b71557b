"""`gantool train cyclegan`: tiny translators (ngf 4, one block, 24×24) on a few generated images or digits-m."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantool.checkpoint import load_generator, read_spec
from gantool.data import load_image
from gantool.images import from_uint8, grid, to_uint8

TINY = ["--size", "24", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--device", "cpu"]  # milliseconds per step
LOSSES = {"loss_G_A", "loss_G_B", "loss_cycle_A", "loss_cycle_B", "loss_idt_A", "loss_idt_B", "loss_D_A", "loss_D_B"}


def unpaired_folder(root: Path, count_a: int = 6, count_b: int = 5) -> Path:
    """trainA/ and trainB/ of random images in mixed sizes and modes, as a user's downloads come."""
    rng = np.random.default_rng(0)
    for domain, count in (("trainA", count_a), ("trainB", count_b)):
        (root / domain).mkdir(parents=True)
        for i in range(count):
            height, width = 30 + 2 * i, 40 - i
            mode, shape = [("RGB", (height, width, 3)), ("L", (height, width)), ("RGBA", (height, width, 4))][i % 3]
            image = Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode)
            image.save(root / domain / f"{domain}_{i}.png")
    return root


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run: Path, direction: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / f"generator_{direction}.safetensors"))


def test_folder_run_writes_both_translators_state_metrics_and_panel(cli, tmp_path: Path) -> None:
    data = unpaired_folder(tmp_path / "data")
    (data / "trainB" / "broken.jpg").write_bytes(b"not a jpeg")
    run = tmp_path / "run"
    args = ["--dataset", data, "--epochs", "1", "--epochs-decay", "1", "--batch-size", "2", "--seed", "3", *TINY]
    result = cli("train", "cyclegan", "--out", run, *args)
    assert result.exit_code == 0, result.stderr
    assert "trained 2/2 epochs (6 steps)" in result.stdout
    assert "warning: skipped 1 unreadable file" in result.stderr and "broken.jpg" in result.stderr

    for direction in ("a2b", "b2a"):
        spec = read_spec(run / f"generator_{direction}.safetensors")
        assert (spec.kind, spec.arch, spec.arch_params) == ("cyclegan", "resnet", {"ngf": 4, "blocks": 1})
        assert (spec.image_shape, spec.latent_dim, spec.value_range) == ((3, 24, 24), None, (-1.0, 1.0))
        assert spec.direction == direction and spec.domains == ("data-A", "data-B")
        assert spec.provenance["dataset"] == "data" and spec.provenance["epochs"] == 2 and spec.provenance["seed"] == 3
        # a folder trains with the reference's loss recipe: both cycles at --lambda-cycle, nothing recoloured
        assert (spec.provenance["lambda_cycle_b"], spec.provenance["cycle_recolor"]) == (10.0, False)

    records = metrics(run)
    assert [r["epoch"] for r in records] == [1, 2] and [r["steps"] for r in records] == [3, 6]  # max(6, 5) // 2
    assert set(records[0]) == {"epoch", "steps", "lr", "seconds", *LOSSES}
    assert [r["lr"] for r in records] == [2e-4, 1e-4]  # constant for --epochs, then linear towards 0
    assert all(r[name] >= 0 for r in records for name in LOSSES)

    import torch

    state = torch.load(run / "train_state.pt", weights_only=True)
    assert state["kind"] == "cyclegan" and state["epoch"] == 2
    assert {"gen_a2b", "gen_b2a", "disc_a", "disc_b", "opt_g", "opt_d", "sched_g", "sched_d", "rng"} <= set(state)
    assert state["pool_a"]["images"].shape == (12, 3, 24, 24)  # 6 steps × 2 fakes, fewer than --pool-size 50
    assert all(np.array_equal(weights(run, "a2b")[k], v.numpy()) for k, v in state["gen_a2b"].items())

    # The panel's rows: real A (centre crop of the load size, 27 for 24), G_A(A) from the saved checkpoint, ...
    panel = np.asarray(Image.open(run / "samples" / "epoch_0002.png"))
    assert panel.shape == (6 * 26 + 2, 5 * 26 + 2, 3) and (run / "samples" / "epoch_0001.png").is_file()
    first_a = np.stack([load_image(path, 27, 3)[1:25, 1:25] for path in sorted((data / "trainA").iterdir())[:5]])
    module, spec = load_generator(run / "generator_a2b.safetensors")
    with torch.no_grad():
        translated = to_uint8(module(torch.from_numpy(from_uint8(first_a, spec.value_range))).numpy(), spec.value_range)
    assert np.array_equal(panel[: 2 * 26 + 2], grid(np.concatenate([first_a, translated]), columns=5))


def test_digits_m_is_the_default_dataset(cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--epochs", "1", "--epochs-decay", "0", "--batch-size", "128", *TINY]
    result = cli("train", "cyclegan", "--out", run, *args)
    assert result.exit_code == 0, result.stderr
    spec = read_spec(run / "generator_b2a.safetensors")
    assert spec.domains == ("digits", "digits-m") and spec.provenance["dataset"] == "digits-m"
    options = json.loads((run / "run.json").read_text())
    # digits-m's training split: the held-out test digits (20%) are kept for gantool eval
    assert (options["images_a"], options["images_b"], options["size"]) == (725, 713, 24)
    assert metrics(run)[0]["steps"] == 725 // 128
    # digits-m's recipe: no B→A→B cycle (it pays B→A to hide the photo patch), a recoloured A→B→A one
    assert (options["lambda_cycle_b"], options["cycle_recolor"]) == (0.0, True)
    assert spec.provenance["cycle_recolor"] is True and metrics(run)[0]["loss_cycle_B"] == 0


def test_recolor_shuffles_and_sign_flips_the_channels_of_each_image() -> None:
    import torch

    from gantool.training.cyclegan import recolor

    images = torch.randn(32, 3, 5, 5, requires_grad=True)
    recoloured = recolor(images, torch.Generator().manual_seed(0))
    orders, flips = set(), 0
    for source, target in zip(images.detach(), recoloured.detach()):
        order = [next(j for j in range(3) if torch.equal(target[i].abs(), source[j].abs())) for i in range(3)]
        assert sorted(order) == [0, 1, 2]
        signs = [1 if torch.equal(target[i], source[j]) else -1 for i, j in enumerate(order)]
        assert all(torch.equal(target[i], sign * source[j]) for i, (j, sign) in enumerate(zip(order, signs)))
        orders.add(tuple(order))
        flips += signs.count(-1)
    assert len(orders) > 1 and 0 < flips < 96  # drawn per image, not once for the batch
    assert torch.equal(recolor(images, torch.Generator().manual_seed(0)), recoloured)  # the run's stream decides
    recoloured.sum().backward()
    assert torch.equal(images.grad.abs(), torch.ones_like(images))  # every value reaches G_A once, sign and all


@pytest.mark.parametrize("recipe", [[], ["--cycle-recolor", "--lambda-cycle-b", "0"]], ids=["reference", "digits-m"])
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(cli, tmp_path: Path, recipe) -> None:
    data = unpaired_folder(tmp_path / "data")
    common = ["--dataset", data, "--batch-size", "2", "--pool-size", "2", "--seed", "5", *recipe, *TINY]  # pool swaps
    assert (
        cli("train", "cyclegan", "--out", tmp_path / "whole", "--epochs", "1", "--epochs-decay", "1", *common).exit_code
        == 0
    )
    assert (
        cli("train", "cyclegan", "--out", tmp_path / "split", "--epochs", "1", "--epochs-decay", "0", *common).exit_code
        == 0
    )
    result = cli("train", "cyclegan", "--out", tmp_path / "split", "--resume", "--epochs-decay", "1")  # train longer
    assert result.exit_code == 0, result.stderr

    for direction in ("a2b", "b2a"):
        whole, split = weights(tmp_path / "whole", direction), weights(tmp_path / "split", direction)
        assert all(np.array_equal(whole[name], split[name]) for name in whole)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in metrics(tmp_path / "whole")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in metrics(tmp_path / "split")]


def test_image_pool_returns_new_fakes_until_full_then_swaps_half() -> None:
    import torch

    from gantool.training.image_pool import ImagePool

    noise = torch.Generator().manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first, noise), first) and len(pool.images) == 4  # filling: fakes pass through

    returned = [pool.query(torch.full((1, 1, 1, 1), 100.0 + i), noise).item() for i in range(400)]
    fresh = [value == 100 + i for i, value in enumerate(returned)]
    assert 0.4 < np.mean(fresh) < 0.6  # each new fake is kept back with probability one half
    earlier = [value in {0, 1, 2, 3} or 100 <= value < 100 + i for i, value in enumerate(returned)]
    assert all(new or old for new, old in zip(fresh, earlier))  # else an earlier fake comes back instead
    assert len(set(returned)) == len(returned) and len(pool.images) == 4  # once handed out, it left the pool

    copy = ImagePool(4)
    copy.load_state_dict(pool.state_dict(), torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(copy.images, pool.images))
    assert torch.equal(ImagePool(0).query(first, noise), first)  # --pool-size 0: only the newest fakes


def test_learning_rate_is_constant_then_falls_linearly_towards_zero() -> None:
    from gantool.training.cyclegan import lr_factor

    assert [lr_factor(done, 3, 2) for done in range(5)] == pytest.approx([1, 1, 1, 2 / 3, 1 / 3])
    assert lr_factor(5, 3, 2) == pytest.approx(0)  # where the line reaches 0: one epoch after the last
    assert [lr_factor(done, 4, 0) for done in range(4)] == [1, 1, 1, 1]  # --epochs-decay 0: constant throughout


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda root: (root / "trainA").mkdir(parents=True), [], "has no trainB/"),
        (lambda root: root.mkdir(), [], "has no trainA/ and no trainB/"),
        (lambda root: unpaired_folder(root, count_b=0), [], "trainB has no images"),
        (lambda root: unpaired_folder(root), ["--size", "30"], "--size 30: the CycleGAN needs a multiple of 4"),
        (lambda root: unpaired_folder(root), ["--size", "20"], "of at least 24"),
        (lambda root: unpaired_folder(root), ["--epochs", "0"], "--epochs"),
        (lambda root: unpaired_folder(root), ["--batch-size", "7"], "--batch-size 7 is larger than both domains"),
        (lambda root: root.write_text("x"), [], "is a file"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path: Path, make, args, message) -> None:
    data = tmp_path / "data"
    make(data)
    run = tmp_path / "run"
    result = cli("train", "cyclegan", "--out", run, "--dataset", data, *TINY, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not run.exists()


def test_resume_keeps_the_run_settings_and_its_kind(cli, tmp_path: Path) -> None:
    data = unpaired_folder(tmp_path / "data")
    run = tmp_path / "run"
    args = ["--dataset", data, "--batch-size", "3", "--epochs", "1", "--epochs-decay", "0", *TINY]
    assert cli("train", "cyclegan", "--out", run, *args).exit_code == 0
    changed = cli("train", "cyclegan", "--out", run, "--resume", "--epochs", "2", "--ngf", "8")
    assert changed.exit_code == 2 and "--ngf 8 differs from its 4" in changed.stderr
    finished = cli("train", "cyclegan", "--out", run, "--resume")
    assert finished.exit_code == 2 and "already trained 1 epochs" in finished.stderr
    gan_run = tmp_path / "gan"
    assert cli("train", "gan", "--out", gan_run, "--epochs", "1", "--batch-size", "899", "--hidden", "8").exit_code == 0
    foreign = cli("train", "cyclegan", "--out", gan_run, "--resume", "--epochs", "3")
    assert foreign.exit_code == 2 and "not a CycleGAN" in foreign.stderr

    (run / "generator_a2b.onnx").write_bytes(b"stale export")  # --force starts over, taking old exports along
    assert cli("train", "cyclegan", "--out", run, "--force", *args).exit_code == 0
    assert not (run / "generator_a2b.onnx").exists() and len(metrics(run)) == 1
