"""Save points of a run: the top-level checkpoint(s) and state, and the periodic ``checkpoints/step_NNNNNNN/``.

Every save writes the generator checkpoint(s) first and ``train_state.pt``
last, each atomically: whatever stops the process, the state on disk is a
complete one and describes weights at least as new as the checkpoints beside
it. A periodic save (``--save-every``) is staged in a hidden folder and renamed
into place whole, then copied to the top level; older periodic folders are
pruned only after that, keeping the newest ``--keep``. ``--resume`` takes the
newest readable state among the top level and the periodic folders.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

from gantool.artifacts import TRAIN_STATE_FILE
from gantool.errors import ArtifactError, GantoolError
from gantool.files import atomic_directory, atomic_save
from gantool.training.state import load_train_state, save_train_state

CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"step_(\d+)")


class CheckpointWriter(Protocol):
    def save_checkpoints(self, folder: Path, epoch: int) -> None:
        """Write the generator checkpoint(s) of the current weights into ``folder``, atomically."""
        ...


def step_dir(run_dir: Path, global_step: int) -> Path:
    return run_dir / CHECKPOINTS_DIR / f"step_{global_step:07d}"


def periodic_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """The complete periodic save folders as (global step, folder), oldest first; staging leftovers are skipped."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [(match, path) for path in folder.iterdir() if path.is_dir() and (match := _STEP_DIR.fullmatch(path.name))]
    return sorted((int(match.group(1)), path) for match, path in found)


def has_state(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds any training state ``--resume`` could start from."""
    return (run_dir / TRAIN_STATE_FILE).is_file() or any(
        (path / TRAIN_STATE_FILE).is_file() for _, path in periodic_dirs(run_dir)
    )


def save_point(run_dir: Path, trainer: CheckpointWriter, state: dict[str, Any], *, periodic: bool, keep: int) -> None:
    """Write checkpoint(s) then state, at the top level and, if ``periodic``, in a new step folder first."""
    epoch, global_step = int(state["epoch"]), int(state["global_step"])
    if not periodic:
        trainer.save_checkpoints(run_dir, epoch)
        save_train_state(run_dir / TRAIN_STATE_FILE, state)
        return
    target = step_dir(run_dir, global_step)
    with atomic_directory(target, force=True) as staging:  # a same-named folder of an abandoned run is replaced
        trainer.save_checkpoints(staging, epoch)
        save_train_state(staging / TRAIN_STATE_FILE, state)
    for path in sorted(target.iterdir(), key=lambda path: path.name == TRAIN_STATE_FILE):  # the state goes last
        atomic_save(run_dir / path.name, lambda tmp, source=path: shutil.copyfile(source, tmp))
    prune(run_dir, keep, global_step)


def prune(run_dir: Path, keep: int, newest: int) -> None:
    """Keep the ``keep`` newest step folders up to ``newest``; later ones belong to a run abandoned by a resume."""
    kept = [(step, path) for step, path in periodic_dirs(run_dir) if step <= newest]
    stale = [path for step, path in periodic_dirs(run_dir) if step > newest] + [path for _, path in kept[:-keep]]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


def load_resume_state(run_dir: Path) -> dict[str, Any]:
    """The newest readable training state of ``run_dir``: the top level's, or a periodic folder's if newer.

    The top level is normally the newest (every save ends there). A periodic
    folder is newer only if the process died between the two writes; it is the
    fallback, with a warning, when the top-level state cannot be read.
    """
    top = run_dir / TRAIN_STATE_FILE
    state: dict[str, Any] | None = None
    failure: GantoolError | None = None
    if top.is_file():
        try:
            state = load_train_state(top)
        except ArtifactError as exc:
            failure = exc
    newest = int(state.get("global_step", -1)) if state is not None else -1
    for step, folder in reversed(periodic_dirs(run_dir)):
        if step <= newest:
            break
        try:
            candidate = load_train_state(folder / TRAIN_STATE_FILE)
        except ArtifactError as exc:
            failure = failure or exc
            continue
        if failure is not None:
            print(f"warning: {failure}; resuming from {folder / TRAIN_STATE_FILE}", file=sys.stderr)
        return candidate
    if state is None:
        raise failure or ArtifactError(f"{run_dir} holds no training state")
    return state
