"""The training progress display: one rich bar over all remaining steps, one line per finished epoch, on stderr."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """A bar over the steps from (``start_epoch`` finished, ``start_batch`` into the next) to the end of ``epochs``."""

    def __init__(
        self, epochs: int, start_epoch: int, start_batch: int, steps_per_epoch: int, show: bool = True
    ) -> None:
        """``show=False`` (ranks other than 0) keeps the bar and its lines off the terminal."""
        self.epochs = epochs
        self.console = Console(stderr=True, quiet=not show)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        total = (epochs - start_epoch) * steps_per_epoch - start_batch
        self.task = self.bar.add_task(self._describe(start_epoch + 1), total=total)

    def _describe(self, epoch: int) -> str:
        return f"epoch {epoch}/{self.epochs}"

    def advance(self) -> None:
        """One optimisation step done."""
        self.bar.advance(self.task)

    def epoch_done(self, epoch: int, summary: str) -> None:
        """Print ``summary`` for the finished (1-based) ``epoch`` above the bar and move the label on."""
        self.bar.console.print(f"{self._describe(epoch)}  {summary}", highlight=False, soft_wrap=True)
        if epoch < self.epochs:
            self.bar.update(self.task, description=self._describe(epoch + 1))


def format_metrics(record: dict[str, Any]) -> str:
    """``loss_d 1.234  loss_g 0.987 … lr 2.0e-04`` for a metrics record (epoch and steps left to the caller)."""
    shown = [f"{key} {_number(value)}" for key, value in record.items() if _shown(key)]
    return "  ".join([*shown, f"{record.get('seconds', 0.0):.1f}s"])


def _shown(key: str) -> bool:
    """The epoch line leaves out counters and --eval-every's secondary figures (they stay in metrics.jsonl)."""
    hidden = ("epoch", "steps", "seconds", "eval_seconds")
    return key not in hidden and not key.startswith(("kid_std", "fid_floor", "min_class_share"))


def _number(value: float) -> str:
    """Three decimals, or two significant digits for small values such as a learning rate."""
    return f"{value:.1e}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
