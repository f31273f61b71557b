"""The training loop every model shares: step by step, with save points, signals and divergence checks.

A run's position is (finished epochs, batches into the next). Every random
choice of an epoch's data depends on (seed, epoch) alone and every other
stream is in the saved state, so a run resumed from any save point repeats
exactly what the uninterrupted run would have done: on the CPU, bit for bit.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gantool.artifacts import TRAIN_STATE_FILE
from gantool.errors import ArtifactError, GantoolError, Interrupted, UsageError
from gantool.signals import StopSignals
from gantool.training.checkpoints import save_point
from gantool.training.distributed import World, launched_world_size
from gantool.training.observers import EpochObserver
from gantool.training.progress import TrainProgress, format_metrics
from gantool.training.run_dir import MetricsLog, clear_run_outputs, write_run_options

if TYPE_CHECKING:
    import torch
    from torch import nn


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is a GPU, else the CPU; an explicit ``cuda`` without one is refused."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise UsageError(f"--device cuda: no CUDA device is available (torch {torch.__version__}, {build})")
    if name == "cuda" and launched_world_size() > 1:  # one GPU per torchrun worker: the one its LOCAL_RANK names
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise UsageError(f"rank {local_rank} on this node has no GPU of its own ({torch.cuda.device_count()} here)")
        return torch.device("cuda", local_rank)
    return torch.device(name)


SHUFFLE_STREAM, NOISE_STREAM = 0, 1  # independent random streams derived from one --seed


def sub_seed(seed: int, *keys: int) -> int:
    """A 64-bit seed that depends on (seed, keys) only: separate streams that never share draws."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0])


def epoch_batches(
    data: torch.Tensor, batch_size: int, seed: int, epoch: int, start: int = 0, world: World | None = None
) -> Iterator[torch.Tensor]:
    """This rank's full batches of ``data`` (N×…) in an order set by (seed, epoch) alone, from batch ``start`` on.

    The order never depends on earlier epochs, so a run resumed in the middle
    of one skips straight to its batch. ``DistributedSampler`` deals the
    shuffled order out to the ranks; the remainder is dropped: BatchNorm
    dislikes tiny batches, and every rank must take the same number of steps.
    """
    import torch

    sampler = (world or World()).sampler(len(data), sub_seed(seed, SHUFFLE_STREAM) % 2**62)
    sampler.set_epoch(epoch)
    order = torch.tensor(list(sampler), dtype=torch.int64).to(data.device)
    for first in range(start * batch_size, len(order) - batch_size + 1, batch_size):
        yield data[order[first : first + batch_size]]


class StepTrainer(Protocol):
    """What ``run_training`` needs from a model's trainer (the GAN's, CycleGAN's)."""

    steps_per_epoch: int
    device: torch.device

    def batches(self, epoch: int, start: int) -> Iterable[Any]:
        """The (1-based) ``epoch``'s batches from batch ``start`` (0-based) on."""
        ...

    def train_step(self, index: int, batch: Any) -> dict[str, torch.Tensor]:
        """One optimisation step on the epoch's ``index``-th (1-based) batch; returns this rank's losses."""
        ...

    def record(self, values: dict[str, torch.Tensor]) -> None:
        """Add a step's losses, averaged over the ranks, to the epoch's sums."""
        ...

    def end_epoch(self) -> dict[str, float]:
        """``steps`` and the finished epoch's mean metrics; clears the sums and moves schedules on."""
        ...

    def networks(self) -> list[nn.Module]:
        """Every module whose weights a save writes."""
        ...

    def save_samples(self, run_dir: Path, epoch: int) -> None:
        """Write the epoch's sample grid atomically."""
        ...

    def save_checkpoints(self, folder: Path, epoch: int) -> None:
        """Write the generator checkpoint(s) into ``folder`` atomically."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything ``--resume`` needs besides the position: tensors and plain containers only."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Put back what ``state_dict`` saved."""
        ...

    def rank_state(self) -> dict[str, Any]:
        """What differs from rank to rank (random streams, image pools); rank 0's is in ``state_dict`` too."""
        ...

    def load_rank_state(self, state: dict[str, Any]) -> None:
        """Put back what ``rank_state`` saved on this rank."""
        ...


@dataclass(frozen=True)
class Position:
    """``epoch`` epochs finished and ``batch`` batches of the next one trained, taking ``seconds`` so far."""

    epoch: int = 0
    batch: int = 0
    seconds: float = 0.0

    def describe(self, steps_per_epoch: int) -> str:
        if self.batch == 0:
            return f"after epoch {self.epoch}"
        return f"at epoch {self.epoch + 1}, step {self.batch}/{steps_per_epoch}"


def resume_position(state: dict[str, Any], steps_per_epoch: int) -> Position:
    """Where a saved state left off; a mid-epoch state needs the data to split into the same batches."""
    epoch, batch = int(state["epoch"]), int(state.get("batch", 0))
    saved_steps = state.get("steps_per_epoch")
    if batch and saved_steps != steps_per_epoch:
        raise ArtifactError(
            f"the run stopped at step {batch}/{saved_steps} of epoch {epoch + 1}, but its data now gives "
            f"{steps_per_epoch} steps per epoch: resume with the data it was trained on"
        )
    return Position(epoch, batch, float(state.get("epoch_seconds", 0.0)))


@dataclass(frozen=True)
class Saving:
    """When to save besides epoch ends and interrupts, how many periodic saves to keep, and how to resume."""

    every: int | None
    keep: int
    resume_command: str

    def due(self, global_step: int) -> bool:
        """Whether the ``global_step``-th step (counted over all epochs) ends with a periodic save."""
        return self.every is not None and global_step % self.every == 0


def run_training(
    trainer: StepTrainer,
    run_dir: Path,
    epochs: int,
    start: Position,
    saving: Saving,
    observers: Sequence[EpochObserver] = (),
    world: World | None = None,
) -> dict[str, Any]:
    """Train from ``start`` to the end of epoch ``epochs``; returns the last epoch's metrics record.

    After each epoch: metrics, samples, checkpoint(s), the state, then the
    observers (which read the saved checkpoint; what they add joins the
    epoch's metrics line). Every
    ``saving.every`` steps and on SIGINT/SIGTERM: checkpoint(s) and state. A
    signal stops the run after its current step and save with ``Interrupted``;
    a non-finite loss stops it at once, saving nothing. With several ranks
    every decision (stop, diverge, save) is taken on all-reduced values, so all
    ranks take it at the same step, and only rank 0 writes or prints.
    """
    world = world or World()
    steps = trainer.steps_per_epoch
    log = MetricsLog(run_dir, keep_epochs=start.epoch) if world.main else None
    progress = TrainProgress(epochs, start.epoch, start.batch, steps, show=world.main)
    saved = start if start != Position() else None  # what is on disk, for the divergence message
    record: dict[str, Any] = {}

    def diverged(what: str, where: str) -> GantoolError:
        if saved is None:
            kept = f"no checkpoint was saved yet in {run_dir}"
        else:
            kept = f"{run_dir} keeps its last good checkpoint, {saved.describe(steps)}"
        return GantoolError(f"training diverged: {what} not finite at {where}; try a lower --lr ({kept})")

    def check_weights(where: str) -> None:
        """Before any save: an update can break the weights while its loss was still finite."""
        if not _all_finite(t for net in trainer.networks() for t in net.state_dict().values() if t.is_floating_point()):
            raise diverged("weights", where)

    def save(at: Position) -> None:
        nonlocal saved
        global_step = at.epoch * steps + at.batch
        rank_states = world.gather(trainer.rank_state())  # every rank takes part; rank 0 receives
        world.check_same_weights(weights_digest(trainer.networks()) if world.size > 1 else "")
        if world.main:
            position = {"epoch": at.epoch, "batch": at.batch, "global_step": global_step, "steps_per_epoch": steps}
            ranks = {"world_size": world.size, "rank_states": rank_states[1:]}
            state = {**trainer.state_dict(), **position, **ranks, "epoch_seconds": at.seconds}
            save_point(run_dir, trainer, state, periodic=saving.due(global_step), keep=saving.keep)
        saved = at

    with StopSignals() as stop, progress.bar:  # rich's live bar: drawn while training, left as its last state after
        for epoch in range(start.epoch + 1, epochs + 1):
            first = start.batch if epoch == start.epoch + 1 else 0
            clock = time.perf_counter() - (start.seconds if first else 0.0)
            for index, batch in enumerate(trainer.batches(epoch, first), start=first + 1):
                values = _averaged(world, trainer.train_step(index, batch))
                if not _all_finite(values.values()):  # checked before anything of this step is saved
                    bad = ", ".join(name for name, value in values.items() if not _all_finite([value]))
                    raise diverged(bad, f"epoch {epoch}, step {index}/{steps}")
                trainer.record(values)
                progress.advance()
                at = Position(epoch - 1, index, time.perf_counter() - clock)
                stopping = index < steps and world.agree(stop.requested, trainer.device)  # the last step: below
                if index < steps and (saving.due(at.epoch * steps + index) or stopping):
                    check_weights(f"epoch {epoch}, step {index}/{steps}")
                    save(at)
                    if stopping:
                        raise _interrupted(stop, at.describe(steps), run_dir, saving)
            check_weights(f"the end of epoch {epoch}")
            record = {"epoch": epoch, **trainer.end_epoch(), "seconds": round(time.perf_counter() - clock, 3)}
            if log is not None:
                log.append(record)
                trainer.save_samples(run_dir, epoch)
            save(Position(epoch))
            observed: dict[str, Any] = {}
            for observer in observers if world.main else ():
                observed |= observer.after_epoch(epoch, {**record, **observed})
            if observed and log is not None:
                record |= observed
                log.replace_last(record)
            progress.epoch_done(epoch, format_metrics(record))
            if world.agree(stop.requested, trainer.device) and epoch < epochs:
                raise _interrupted(stop, Position(epoch).describe(steps), run_dir, saving)
    return record


def _averaged(world: World, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The step's losses averaged over the ranks (one all-reduce): every rank logs and checks the same values."""
    if world.size == 1:
        return values
    import torch

    names = list(values)
    return dict(zip(names, world.average(torch.stack([values[name] for name in names]))))


def weights_digest(networks: Sequence[nn.Module]) -> str:
    """SHA-256 of every parameter's bytes: equal on every rank while DDP keeps the replicas in step.

    Parameters only: BatchNorm's running statistics are each rank's own between
    DDP's broadcasts of rank 0's, which is what is saved.
    """
    import hashlib

    digest = hashlib.sha256()
    for net in networks:
        for parameter in net.parameters():
            digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every tensor is finite, with one host sync for the lot."""
    import torch

    return bool(torch.stack([tensor.isfinite().all() for tensor in tensors]).all())


def _interrupted(stop: StopSignals, where: str, run_dir: Path, saving: Saving) -> Interrupted:
    """The interrupt that ends the run; a rank stopped because another rank was signalled leaves with SIGTERM's code."""
    cause = f"stopped by {stop.name}" if stop.requested else "stopped with the other ranks, one of them signalled,"
    message = f"{cause} {where}; saved {run_dir / TRAIN_STATE_FILE}; resume with: {saving.resume_command}"
    if not stop.requested:
        return Interrupted(message, 143)
    return Interrupted(message, stop.exit_code)


def start_training(
    trainer: StepTrainer,
    run_dir: Path,
    state: dict[str, Any] | None,
    force: bool,
    options: dict[str, Any],
    epochs: int,
    saving: Saving,
    observers: Sequence[EpochObserver] = (),
    world: World | None = None,
    summary: str = "",
) -> dict[str, Any]:
    """What every ``gantool train`` command does once its trainer is built: resume, prepare the run dir, train.

    ``state`` (from ``--resume``) puts the trainer back and sets where training
    starts; each rank takes its own streams from it, and a state saved by
    another number of processes is refused. ``force`` clears the old run's
    outputs; ``options`` are written to run.json with the resume position and
    the world size added. Only rank 0 touches the run folder, and prints
    ``summary`` (how the job trains) once nothing can refuse it any more.
    """
    world = world or World()
    start = Position()
    if state is not None:
        saved_size = int(state.get("world_size", 1))
        if saved_size != world.size:
            raise UsageError(
                f"{run_dir} was trained by {saved_size} process{'es' if saved_size > 1 else ''}; resume it with as "
                f"many (--nproc {saved_size}), not {world.size}: the data shards and per-rank streams depend on it"
            )
        trainer.load_state(state)
        if world.rank > 0:
            trainer.load_rank_state(state["rank_states"][world.rank - 1])
        start = resume_position(state, trainer.steps_per_epoch)
    if world.main:
        if summary:
            print(summary, file=sys.stderr)
        if force:
            clear_run_outputs(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        resumed = {"resumed_from_epoch": start.epoch, "resumed_from_step": start.batch}
        write_run_options(run_dir, {**options, "world_size": world.size, **resumed})
    try:
        return run_training(trainer, run_dir, epochs, start, saving, observers, world)
    finally:
        for observer in observers:
            observer.close()
