"""What watches a run at epoch ends without changing it: quality (``--eval-every``) and TensorBoard (``--tensorboard``).

An observer runs after the epoch's checkpoint is on disk and reads that
checkpoint the way ``gantool eval`` does, so the figures it logs are the ones a
user gets from ``gantool eval RUN_DIR`` on that epoch's files, not a second
implementation. Observers add keys to the epoch's line of metrics.jsonl; they
never touch the training state, so a resumed run trains exactly as before
whether or not they were on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from gantool.errors import UsageError

TENSORBOARD_DIR = "tensorboard"
TENSORBOARD_MISSING = "--tensorboard needs TensorBoard: pip install 'gantool[tensorboard]'"


class EpochObserver(Protocol):
    """Called once per finished epoch, after its samples and checkpoints are saved."""

    def after_epoch(self, epoch: int, record: dict[str, Any]) -> dict[str, Any]:
        """Extra metrics for the epoch's metrics.jsonl line (empty: nothing to add)."""
        ...

    def close(self) -> None:
        """Flush and release whatever the observer holds (files, writers)."""
        ...


class QualityEvery:
    """``--eval-every N``: KID, FID and the digit classifier's figures every N epochs and after the last one.

    A GAN is judged on ``samples`` samples of its checkpoint against its training
    data, a CycleGAN on its test split in both directions. KID is unbiased at
    any N; FID is logged as well because with the bundled digits extractor it
    costs little (128-d features), but compare it only between epochs of a run.
    """

    def __init__(self, run_dir: Path, every: int, last_epoch: int, samples: int, seed: int) -> None:
        self.run_dir, self.every, self.last_epoch, self.samples, self.seed = run_dir, every, last_epoch, samples, seed
        self._reader: Any = None  # the extractor gantool eval would pick, opened at the first evaluation

    def after_epoch(self, epoch: int, record: dict[str, Any]) -> dict[str, Any]:
        if epoch % self.every and epoch != self.last_epoch:
            return {}
        from gantool.benchmarks.quality.run import evaluate_model, model_spec

        clock = time.perf_counter()
        spec = model_spec(self.run_dir, None)
        if self._reader is None:
            self._reader = _reader_for(spec)
        found: dict[str, Any] = {}
        for evaluation in evaluate_model(
            self.run_dir, spec, self._reader, [("torch", "fp32")], device="cpu", n=self.samples, seed=self.seed
        ):
            suffix = f"_{evaluation.direction}" if evaluation.direction else ""
            row = next(row for row in evaluation.rows if row["kind"] == "model")
            floor = next(row for row in evaluation.rows if row["kind"] == "floor")
            found |= {f"kid{suffix}": row["kid"], f"kid_std{suffix}": row["kid_std"], f"fid{suffix}": row["fid"]}
            found[f"fid_floor{suffix}"] = floor["fid"]
            readings = [summary for summary in evaluation.classifier if "backend" in summary]
            if readings:
                found[f"confidence{suffix}"] = readings[0]["mean_confidence"]
                found[f"min_class_share{suffix}"] = readings[0]["min_class_share"]
                if "keeps_label" in readings[0]:
                    found[f"keeps_digit{suffix}"] = readings[0]["keeps_label"]
        found["eval_seconds"] = round(time.perf_counter() - clock, 2)
        return {key: round(value, 6) if isinstance(value, float) else value for key, value in found.items()}

    def close(self) -> None:
        pass


def _reader_for(spec: Any) -> Any:
    """A FeatureReader on the extractor ``gantool eval`` picks for this model (digits for digit data, else inception)."""
    from gantool.benchmarks.quality.extractors import default_extractor, open_extractor
    from gantool.benchmarks.quality.features import FeatureReader

    return FeatureReader(open_extractor(default_extractor(spec), device="auto"))


class TensorBoardLog:
    """``--tensorboard``: every number of each epoch's metrics line, and its sample grid, as TensorBoard events."""

    def __init__(self, run_dir: Path, first_epoch: int) -> None:
        self.run_dir, self.first_epoch = run_dir, first_epoch
        self._writer: Any = None  # opened at the first epoch end: --force has cleared the old events by then

    def after_epoch(self, epoch: int, record: dict[str, Any]) -> dict[str, Any]:
        import numpy as np
        from PIL import Image

        from gantool.training.run_dir import sample_grid_path

        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UsageError(TENSORBOARD_MISSING) from None
            # purge_step drops events a resumed run writes again (TensorBoard's documented way to restart)
            purge = self.first_epoch + 1 if self.first_epoch else None
            self._writer = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=purge)

        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(_tag(key), value, epoch)
        grid = sample_grid_path(self.run_dir, epoch)
        if grid.is_file():
            with Image.open(grid) as image:
                pixels = np.asarray(image.convert("RGB"))
            self._writer.add_image("samples", pixels, epoch, dataformats="HWC")
        self._writer.flush()
        return {}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _tag(key: str) -> str:
    """TensorBoard groups by the part before '/': losses, discriminator outputs, quality, the rest as timing."""
    if key.startswith("loss"):
        return f"loss/{key}"
    if key in ("d_real", "d_fake"):
        return f"discriminator/{'D(x)' if key == 'd_real' else 'D(G(z))'}"
    if key.split("_")[0] in ("kid", "fid", "confidence", "min", "keeps"):
        return f"quality/{key}"
    return f"run/{key}"


def make_observers(
    run_dir: Path, *, eval_every: int | None, eval_samples: int, tensorboard: bool, state: dict[str, Any] | None,
    last_epoch: int, seed: int,
) -> list[EpochObserver]:  # fmt: skip
    """The observers the flags ask for, quality first (TensorBoard then logs its figures too).

    ``--tensorboard`` without TensorBoard installed is refused here, before any training starts.
    """
    observers: list[EpochObserver] = []
    if eval_every is not None:
        observers.append(QualityEvery(run_dir, eval_every, last_epoch, eval_samples, seed))
    if tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UsageError(TENSORBOARD_MISSING)
        observers.append(TensorBoardLog(run_dir, int(state["epoch"]) if state else 0))
    return observers
