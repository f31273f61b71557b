"""Training over several processes: torchrun's agent, DDP on gloo, on this CPU, on 127.0.0.1 only.

Every job runs as a real ``python -m gantool train … --nproc 2`` (or a real
``torchrun``) under ``timeout -k``, so a hung rendezvous or a worker that
ignores SIGTERM fails the test instead of hanging it. Each job is a few
seconds of tiny networks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_train_cyclegan import TINY as CYCLE_TINY
from test_train_cyclegan import unpaired_folder
from test_train_gan import weights

from gantool.errors import GantoolError
from gantool.training.distributed import World
from gantool.training.launch import worker_arguments
from gantool.training.loop import epoch_batches

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker environments from /proc")

JOB_LIMIT_S = 180  # any one job; a healthy one takes seconds
# The MLP GAN on the bundled digits, small enough for a step of a millisecond or two.
GAN = ["--hidden", "16,32", "--latent-dim", "8", "--device", "cpu"]


def gantool(*args: str | Path, limit: int = JOB_LIMIT_S) -> list[str]:
    """The command line of ``gantool ARGS`` bounded by ``timeout -k``: killed if it outlives ``limit`` seconds."""
    return ["timeout", "-k", "10", str(limit), sys.executable, "-m", "gantool", *map(str, args)]


def run(*args: str | Path, limit: int = JOB_LIMIT_S) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        gantool(*args, limit=limit), check=False, capture_output=True, text=True, env=env, timeout=limit + 30
    )


def errors(stderr: str) -> list[str]:
    """The lines that report a failure (progress lines left out)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def state(run_dir: Path) -> dict:
    import torch

    return torch.load(run_dir / "train_state.pt", weights_only=True)


def assert_same_weights(a: Path, b: Path, atol: float = 0.0) -> None:
    left, right = weights(a), weights(b)
    assert left.keys() == right.keys()
    for name in left:
        np.testing.assert_allclose(left[name], right[name], rtol=0, atol=atol, err_msg=name)


# -- the data and the noise: one global sequence, dealt out to the ranks -------------------------------------


def test_two_ranks_of_batch_b_see_the_batches_of_one_process_of_batch_2b() -> None:
    import torch

    data = torch.arange(50).reshape(50, 1).float()  # 50 items: 25 per rank, 3 batches of 8 each
    whole = list(epoch_batches(data, 16, seed=4, epoch=3))
    halves = [list(epoch_batches(data, 8, seed=4, epoch=3, world=World(rank, 2))) for rank in (0, 1)]
    assert len(whole) == len(halves[0]) == len(halves[1]) == 3
    for together, first, second in zip(whole, *halves):
        assert sorted(together.flatten().tolist()) == sorted(torch.cat([first, second]).flatten().tolist())
    assert [len(batch) for batch in whole] == [16, 16, 16]  # 50 // 16 = 3: the remainder is dropped


def test_a_rank_takes_its_own_rows_of_the_global_noise() -> None:
    import torch

    drawn = torch.arange(12).reshape(6, 2)
    assert World(0, 2).share(drawn).tolist() == drawn[:3].tolist()
    assert World(1, 2).share(drawn).tolist() == drawn[3:].tolist()
    assert World().share(drawn).tolist() == drawn.tolist()  # a world of one keeps them all


def test_cyclegan_ranks_split_each_global_batch_and_its_crops() -> None:
    import torch

    from gantool.training.unpaired import UnpairedBatches

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (count, 10, 10, 3), dtype=np.uint8) for count in (9, 7))
    batches = UnpairedBatches(a, b, 8, True, torch.device("cpu"))
    whole = list(batches.epoch(1, 2, 4))  # 9 // 4 = 2 global batches of 4 pairs
    ranks = [list(batches.epoch(1, 2, 2, rank=rank, ranks=2)) for rank in (0, 1)]
    for (whole_a, whole_b), (a0, b0), (a1, b1) in zip(whole, *ranks):
        torch.testing.assert_close(whole_a[0::2], a0)  # the same images, cropped and flipped the same way
        torch.testing.assert_close(whole_b[0::2], b0)
        torch.testing.assert_close(whole_a[1::2], a1)
        torch.testing.assert_close(whole_b[1::2], b1)


def test_the_workers_run_the_command_without_its_launch_options() -> None:
    argv = ["train", "gan", "--out", "r", "--nproc", "2", "--nnodes=2", "--node-rank", "1", "--rdzv-endpoint=h:1"]
    assert worker_arguments(argv) == ["train", "gan", "--out", "r"]


def test_a_save_point_is_refused_when_the_ranks_weights_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(rank=0, size=2)
    monkeypatch.setattr(world, "gather", lambda value: [value, "f" * 64])
    with pytest.raises(GantoolError, match="weights differ"):
        world.check_same_weights("0" * 64)
    monkeypatch.setattr(world, "gather", lambda value: [value, value])
    world.check_same_weights("0" * 64)


# -- same result, more processes ---------------------------------------------------------------------------

# One epoch of the digits, dropout and the minibatch std off (each rank draws its own dropout masks and takes its
# own batch's spread, so with either on the runs differ by design): 1797 // 16 = 112 steps of a global batch of 16.
EPOCH = ["--epochs", "1", "--dropout", "0", "--no-minibatch-std", *GAN]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``gantool train gan --nproc 2 --batch-size 8``: the run the other launches are compared with."""
    run_dir = tmp_path_factory.mktemp("ddp") / "two"
    return run_dir, run("train", "gan", "--out", run_dir, "--batch-size", "8", "--nproc", "2", *EPOCH)


def test_two_processes_of_batch_8_train_what_one_process_of_batch_16_trains(tmp_path: Path, two_processes) -> None:
    two_dir, two = two_processes
    one = run("train", "gan", "--out", tmp_path / "one", "--batch-size", "16", *EPOCH)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "training on 2 processes (gloo): batch 8 per process, global batch 16" in two.stderr
    assert two.stdout.count("trained 1/1 epochs (112 generator steps)") == 1  # rank 0 speaks for the job

    assert_same_weights(tmp_path / "one", two_dir, atol=1e-5)
    for network in ("generator", "discriminator"):
        for name, tensor in state(tmp_path / "one")[network].items():
            np.testing.assert_allclose(tensor, state(two_dir)[network][name], rtol=0, atol=1e-5)
    options = json.loads((two_dir / "run.json").read_text())
    assert (options["world_size"], options["batch_size"], options["global_batch_size"]) == (2, 8, 16)


def test_torchrun_itself_runs_the_same_job(tmp_path: Path, two_processes) -> None:
    command = ["timeout", "-k", "10", str(JOB_LIMIT_S), sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "gantool", "train", "gan", "--out", str(tmp_path / "r"),
               "--batch-size", "8", *EPOCH]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=JOB_LIMIT_S + 30)
    assert result.returncode == 0, result.stderr
    assert_same_weights(tmp_path / "r", two_processes[0])


def test_two_nodes_on_loopback_train_one_model(tmp_path: Path, two_processes) -> None:
    with socket.socket() as probe:  # a free port for node 0's rendezvous store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = ["train", "gan", "--out", tmp_path / "nodes", "--batch-size", "8", *EPOCH,
              "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{port}"]  # fmt: skip
    nodes = [start(*common, "--node-rank", str(rank)) for rank in (0, 1)]
    outputs = [node.communicate(timeout=JOB_LIMIT_S + 30) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert sum(out.count("trained 1/1 epochs") for out, _ in outputs) == 1
    assert json.loads((tmp_path / "nodes" / "run.json").read_text())["world_size"] == 2
    assert_same_weights(tmp_path / "nodes", two_processes[0])


def test_resuming_with_another_number_of_processes_is_refused(two_processes) -> None:
    run_dir, _ = two_processes
    alone = run("train", "gan", "--out", run_dir, "--epochs", "2", "--resume")
    three = run("train", "gan", "--out", run_dir, "--epochs", "2", "--resume", "--nproc", "3")
    for result in (alone, three):
        assert result.returncode == 2
        assert len(errors(result.stderr)) == 1 and "resume it with" in result.stderr and "--nproc 2" in result.stderr
    assert state(run_dir)["epoch"] == 1  # nothing was trained or written


# -- interrupts, resume, a rank that dies --------------------------------------------------------------------


def start(*args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(gantool(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_epochs(run_dir: Path, epochs: int, job: subprocess.Popen[str], limit: float = 120) -> None:
    """Until the run has logged ``epochs`` epochs (bounded: the test fails if the job never gets there)."""
    deadline = time.monotonic() + limit
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline and job.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= epochs:
            return
        time.sleep(0.05)
    pytest.fail(f"the job did not reach epoch {epochs} (exit {job.poll()})")


def rank_pid(run_dir: Path, rank: int) -> int:
    """The PID of the worker of ``rank`` training ``run_dir``, found by its command line and environment."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = str(run_dir).encode() in command and b"timeout" not in command[0]
        if ours and f"RANK={rank}".encode() in environment:
            return int(entry.name)
    pytest.fail(f"no worker of rank {rank} found for {run_dir}")


LONG = ["--epochs", "16", "--batch-size", "64", *GAN, "--nproc", "2"]  # 14 steps per epoch, a fraction of a second


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "whole"
    result = run("train", "gan", "--out", run_dir, *LONG)
    assert result.returncode == 0, result.stderr
    return run_dir


def test_an_interrupted_two_process_run_saves_once_and_resumes_bit_identical(
    tmp_path: Path, uninterrupted: Path
) -> None:
    """Dropout on: each rank's own masks and streams travel in rank 0's save, so the resume is exact all the same."""
    stderr = interrupt(tmp_path / "cut", signal.SIGTERM, 143)
    assert errors(stderr)[0].endswith(f"--out {tmp_path / 'cut'} --resume --nproc 2")
    saved = state(tmp_path / "cut")
    assert saved["world_size"] == 2 and len(saved["rank_states"]) == 1

    resumed = run("train", "gan", "--out", tmp_path / "cut", "--resume", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(tmp_path / "cut", uninterrupted)
    assert state(tmp_path / "cut")["discriminator"].keys() == state(uninterrupted)["discriminator"].keys()
    for name, tensor in state(uninterrupted)["discriminator"].items():
        assert (state(tmp_path / "cut")["discriminator"][name] == tensor).all(), name


def test_ctrl_c_stops_every_rank_with_130_after_one_save(tmp_path: Path) -> None:
    interrupt(tmp_path / "cut", signal.SIGINT, 130)
    assert state(tmp_path / "cut")["epoch"] >= 1


def interrupt(run_dir: Path, signum: int, code: int) -> str:
    """Start a 2-process run, send ``signum`` once it has trained 2 epochs; check it saved once; its stderr."""
    job = start("train", "gan", "--out", run_dir, *LONG)
    wait_for_epochs(run_dir, 2, job)
    job.send_signal(signum)  # to `timeout`, which passes it on to the launcher, which passes it to the workers
    _, stderr = job.communicate(timeout=JOB_LIMIT_S)
    assert job.returncode == code, stderr
    assert len(errors(stderr)) == 1 and "; saved " in errors(stderr)[0], stderr  # one save, by rank 0
    return stderr


def test_a_killed_rank_fails_the_job_in_one_line_and_resume_continues(tmp_path: Path) -> None:
    job = start("train", "gan", "--out", tmp_path / "r", *LONG)
    wait_for_epochs(tmp_path / "r", 2, job)
    os.kill(rank_pid(tmp_path / "r", 1), signal.SIGKILL)
    killed_at = time.monotonic()
    _, stderr = job.communicate(timeout=JOB_LIMIT_S)
    assert time.monotonic() - killed_at < 60  # the agent notices within its monitor interval
    assert job.returncode == 1
    assert len(errors(stderr)) == 1, stderr
    assert "rank 1" in errors(stderr)[0] and "SIGKILL" in errors(stderr)[0] and "--resume --nproc 2" in stderr
    kept = state(tmp_path / "r")["epoch"]
    assert kept >= 1  # epoch 2's line may be logged while its save was cut short

    resumed = run("train", "gan", "--out", tmp_path / "r", "--resume", "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["resumed_from_epoch"] == kept


def test_cyclegan_over_two_processes_resumes_bit_identical(tmp_path: Path) -> None:
    """The image pools and the recolouring noise are each rank's own; rank 0's save carries both ranks'."""
    from safetensors.numpy import load_file

    data = unpaired_folder(tmp_path / "data", 8, 6)  # 8 // (2 × 2) = 2 steps per epoch
    common = [
        "--dataset",
        data,
        "--batch-size",
        "2",
        "--pool-size",
        "3",
        "--cycle-recolor",
        *CYCLE_TINY,
        "--nproc",
        "2",
    ]
    whole = run("train", "cyclegan", "--out", tmp_path / "whole", "--epochs", "2", "--epochs-decay", "1", *common)
    first = run("train", "cyclegan", "--out", tmp_path / "cut", "--epochs", "1", "--epochs-decay", "0", *common)
    assert whole.returncode == 0 and first.returncode == 0, whole.stderr + first.stderr
    assert len(state(tmp_path / "cut")["rank_states"][0]["pool_a"]["images"]) == 3  # rank 1's own pool, full
    rest = run("train", "cyclegan", "--out", tmp_path / "cut", "--resume", "--epochs", "2", "--epochs-decay", "1",
               "--nproc", "2")  # fmt: skip
    assert rest.returncode == 0, rest.stderr
    for direction in ("a2b", "b2a"):
        left = load_file(str(tmp_path / "cut" / f"generator_{direction}.safetensors"))
        right = load_file(str(tmp_path / "whole" / f"generator_{direction}.safetensors"))
        for name in left:
            assert (left[name] == right[name]).all(), (direction, name)


# -- the GAN step under DDP, in this process: a gloo group of one, the networks wrapped as for many ---------


def test_the_generator_step_all_reduces_no_discriminator_gradient(tmp_path: Path) -> None:
    """D is frozen during G's step, so its DDP wrapper has nothing to all-reduce; D's step sends D's gradients
    only, and its fakes are detached, so G gets no gradient from it."""
    import torch
    import torch.distributed as dist

    from gantool.training.config import GanConfig
    from gantool.training.gan import GanTrainer, gan_spec

    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        cfg = GanConfig(hidden=[16, 32], latent_dim=8, batch_size=4)
        pixels = np.zeros((16, 28, 28, 1), dtype=np.uint8)
        world = World(rank=0, size=2)  # wraps in DDP; the group of one stands in for the other rank
        trainer = GanTrainer(cfg, gan_spec(cfg, pixels), torch.zeros(16, 1, 28, 28), "zeros", world)
        sent = {"generator": 0, "discriminator": 0}

        def counting(name: str):
            def hook(state, bucket):  # unannotated: DDP checks the annotations it finds, which are strings here
                sent[name] += 1
                future: torch.futures.Future[torch.Tensor] = torch.futures.Future()
                future.set_result(bucket.buffer())
                return future

            return hook

        trainer.train_g.wrapper.register_comm_hook(None, counting("generator"))
        trainer.train_d.wrapper.register_comm_hook(None, counting("discriminator"))
        trainer.d_step(torch.zeros(4, 1, 28, 28))
        assert sent == {"generator": 0, "discriminator": 1}
        assert all(parameter.grad is None for parameter in trainer.generator.parameters())
        trainer.g_step()
        assert sent == {"generator": 1, "discriminator": 1}
        world.release()
        assert trainer.train_d.wrapper is None and world.replicas == []
    finally:
        dist.destroy_process_group()
