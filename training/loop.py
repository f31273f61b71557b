"""Pieces every training loop shares: the device, per-epoch shuffles, batches and the progress display."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gantool.artifacts import TRAIN_STATE_FILE
from gantool.errors import GantoolError, UsageError
from gantool.training.run_dir import MetricsLog
from gantool.training.state import save_train_state

if TYPE_CHECKING:
    import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when there is a GPU, else the CPU; an explicit ``cuda`` without one is refused."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise UsageError(f"--device cuda: no CUDA device is available (torch {torch.__version__}, {build})")
    return torch.device(name)


SHUFFLE_STREAM, NOISE_STREAM = 0, 1  # independent random streams derived from one --seed


def sub_seed(seed: int, *keys: int) -> int:
    """A 64-bit seed that depends on (seed, keys) only: separate streams that never share draws."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0])


def epoch_batches(data: torch.Tensor, batch_size: int, seed: int, epoch: int) -> Iterator[torch.Tensor]:
    """Full batches of ``data`` (N×…) in an order set by (seed, epoch) alone, so a resumed run shuffles alike.

    The remainder is dropped: BatchNorm dislikes tiny batches.
    """
    import torch

    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(sub_seed(seed, SHUFFLE_STREAM, epoch)))
    order = order.to(data.device)
    for start in range(0, len(data) - batch_size + 1, batch_size):
        yield data[order[start : start + batch_size]]


class TrainProgress:
    """A rich progress bar over all steps of the remaining epochs, on stderr, with one line per finished epoch."""

    def __init__(self, epochs: int, start_epoch: int, steps_per_epoch: int) -> None:
        self.epochs = epochs
        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        total = (epochs - start_epoch) * steps_per_epoch
        self.task = self.bar.add_task(self._describe(start_epoch + 1), total=total)

    def _describe(self, epoch: int) -> str:
        return f"epoch {epoch}/{self.epochs}"

    def advance(self) -> None:
        self.bar.advance(self.task)

    def epoch_done(self, epoch: int, summary: str) -> None:
        """Print ``summary`` for the finished (1-based) ``epoch`` above the bar and move the label on."""
        self.bar.console.print(f"{self._describe(epoch)}  {summary}", highlight=False, soft_wrap=True)
        if epoch < self.epochs:
            self.bar.update(self.task, description=self._describe(epoch + 1))


class EpochTrainer(Protocol):
    """What ``run_epochs`` needs from a model's trainer (the GAN's, CycleGAN's)."""

    steps_per_epoch: int

    def train_epoch(self, epoch: int, advance: Callable[[], None]) -> dict[str, float]:
        """Train one (1-based) epoch, calling ``advance`` per batch; return ``steps`` and the epoch's mean metrics."""
        ...

    def save_epoch(self, run_dir: Path, epoch: int) -> None:
        """Write the epoch's sample grid and checkpoint(s) atomically."""
        ...

    def state_dict(self, epoch: int) -> dict[str, Any]:
        """Everything ``--resume`` needs after ``epoch``: tensors and plain containers only."""
        ...


def run_epochs(trainer: EpochTrainer, run_dir: Path, epochs: int, start_epoch: int) -> dict[str, Any]:
    """Train epochs ``start_epoch+1 .. epochs``; after each: metrics, samples, checkpoint, then the state.

    The state goes last because it is what ``--resume`` trusts: a run stopped
    at any point resumes from its last complete epoch.
    """
    log = MetricsLog(run_dir, keep_epochs=start_epoch)
    record: dict[str, Any] = {}
    progress = TrainProgress(epochs, start_epoch, trainer.steps_per_epoch)
    with progress.bar:  # rich's live bar: drawn while training, left as its last state after
        for epoch in range(start_epoch + 1, epochs + 1):
            started = time.perf_counter()
            metrics = trainer.train_epoch(epoch, progress.advance)
            bad = [name for name, value in metrics.items() if not math.isfinite(value)]
            if bad:
                raise GantoolError(
                    f"training diverged in epoch {epoch} ({', '.join(bad)} not finite): try a lower --lr "
                    "(the run keeps its last finished epoch)"
                )
            record = {"epoch": epoch, **metrics, "seconds": round(time.perf_counter() - started, 3)}
            log.append(record)
            trainer.save_epoch(run_dir, epoch)
            save_train_state(run_dir / TRAIN_STATE_FILE, trainer.state_dict(epoch))
            progress.epoch_done(epoch, format_metrics(record))
    return record


def format_metrics(record: dict[str, Any]) -> str:
    """``loss_d 1.234  loss_g 0.987 … lr 2.0e-04`` for a metrics record (epoch and steps left to the caller)."""
    shown = [f"{key} {_number(value)}" for key, value in record.items() if key not in ("epoch", "steps", "seconds")]
    return "  ".join([*shown, f"{record.get('seconds', 0.0):.1f}s"])


def _number(value: float) -> str:
    """Three decimals, or two significant digits for small values such as a learning rate."""
    return f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
