"""The run folder a training command writes into: checks, options, metrics and sample grids.

Shared by every ``gantool train`` command. A run folder is refused before any
work starts when it would clobber another run; every file in it is written
atomically, so an interrupted run leaves its last save point behind, never a
truncated file. ``train_state.pt`` is written last at each save point (see
checkpoints.py): it is the commit point that ``--resume`` trusts, and metrics
beyond it are dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from gantool.artifacts import (
    CHECKPOINT_SUFFIX,
    DIRECTIONS,
    FP16_ONNX_SUFFIX,
    METRICS_FILE,
    ONNX_SUFFIX,
    RUN_OPTIONS_FILE,
    SAMPLES_DIR,
    TRAIN_STATE_FILE,
    checkpoint_in,
)
from gantool.errors import UsageError
from gantool.files import atomic_write_bytes, atomic_write_text
from gantool.images import grid, png_bytes
from gantool.training.checkpoints import CHECKPOINTS_DIR, has_state


def check_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Refuse a run folder that cannot be used as asked; touches nothing.

    A fresh run needs a missing or empty folder (or ``--force``); ``--resume``
    needs a folder holding the training state of an earlier run.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a run folder")
    if resume:
        if force:
            raise UsageError("--resume and --force contradict each other: pick one")
        if not has_state(run_dir):
            raise UsageError(f"cannot resume: {run_dir} holds no {TRAIN_STATE_FILE} (train without --resume first)")
        return
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise UsageError(f"run folder {run_dir} is not empty (use --resume to continue it or --force to start over)")
    probe = run_dir
    while not probe.exists():  # the nearest existing ancestor decides whether we can create it
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"cannot create run folder {run_dir}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write run folder {run_dir}: {probe} is not writable")


def clear_run_outputs(run_dir: Path) -> None:
    """Remove an earlier run's own files (``--force``), so none of them outlive it.

    Stale exports go too: an ONNX file of the old weights beside the new
    checkpoint would be picked up by ``gantool generate``. Other files stay.
    """
    names = [TRAIN_STATE_FILE, METRICS_FILE, RUN_OPTIONS_FILE]
    for checkpoint in (checkpoint_in(run_dir, direction) for direction in (None, *DIRECTIONS)):  # GAN, CycleGAN
        stem = checkpoint.name.removesuffix(CHECKPOINT_SUFFIX)
        names += [checkpoint.name, stem + ONNX_SUFFIX, stem + FP16_ONNX_SUFFIX]
    for name in names:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / SAMPLES_DIR, ignore_errors=True)
    shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
    shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)  # = observers.TENSORBOARD_DIR


def write_run_options(run_dir: Path, options: dict[str, Any]) -> None:
    """Save the resolved options beside the checkpoint, so a run says how it was made."""
    atomic_write_text(run_dir / RUN_OPTIONS_FILE, json.dumps(options, indent=2, sort_keys=True) + "\n")


class MetricsLog:
    """``metrics.jsonl``: one JSON object per finished epoch, rewritten atomically on each append."""

    def __init__(self, run_dir: Path, keep_epochs: int = 0) -> None:
        """Open the log, keeping only the lines of the first ``keep_epochs`` epochs (those a resume restores)."""
        self.path = run_dir / METRICS_FILE
        self.lines: list[str] = []
        if keep_epochs and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("epoch", 0) <= keep_epochs:
                        self.lines.append(line)
                except (ValueError, AttributeError):
                    continue  # a foreign or damaged line: not ours to keep

    def append(self, record: dict[str, Any]) -> None:
        self.lines.append(json.dumps(record, sort_keys=False))
        atomic_write_text(self.path, "\n".join(self.lines) + "\n")

    def replace_last(self, record: dict[str, Any]) -> None:
        """Rewrite the last line: the epoch's record with what observers measured after its save."""
        self.lines[-1] = json.dumps(record, sort_keys=False)
        atomic_write_text(self.path, "\n".join(self.lines) + "\n")


def sample_grid_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / SAMPLES_DIR / f"epoch_{epoch:04d}.png"


def write_sample_grid(path: Path, pixels: np.ndarray, columns: int | None = None) -> None:
    """Tile uint8 N×H×W×C samples into one PNG, ``columns`` wide (default square: 8 columns for 64 samples)."""
    atomic_write_bytes(path, png_bytes(grid(pixels, columns)))
