"""A folder of outputs (``generate --out DIR``, ``translate --out DIR``) that survives being interrupted.

Files are written one at a time, each atomically (gantool.files.atomic_path),
straight into the folder: whatever stands under its final name is complete,
so a run that was stopped (Ctrl-C, SIGTERM, a full disk, a crash) can be
continued with ``--resume``, which keeps those files, removes the temporaries a
killed process could not, and writes only the rest.

Three ways to open one:

- fresh (the folder does not exist): created, filled in place; a run that
  fails before writing any output removes it again;
- ``--resume`` (it exists): filled in place; an optional manifest (what the
  outputs are a function of: seed, model, count) must match the one recorded,
  since a different seed or model would mix two sets;
- ``--force`` (it exists): the new set is built in a staging folder and swapped
  in only once complete (gantool.files.atomic_directory), so the old output
  survives any failure.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any, final

from gantool.errors import UsageError
from gantool.files import atomic_directory, atomic_write_text, remove_temp_files

FRESH, RESUMED, REPLACING = "fresh", "resumed", "replacing"


@final
class OutputFolder(contextlib.AbstractContextManager["OutputFolder"]):
    """``with OutputFolder(out, force=..., resume=...) as folder: folder.root / name``.

    ``manifest`` is ``(file name, settings)``: the settings are written as JSON
    into the folder before any output, and compared on ``--resume``.
    """

    def __init__(
        self, path: Path, *, force: bool, resume: bool, manifest: tuple[str, dict[str, Any]] | None = None
    ) -> None:
        self.path, self.force, self.resume, self.manifest = path, force, resume, manifest
        self.root = path
        self.mode = FRESH
        self._staging: contextlib.AbstractContextManager[Path] | None = None

    @property
    def keeps_partial(self) -> bool:
        """Whether complete outputs stay at ``path`` when the run stops early (so ``--resume`` can go on)."""
        return self.mode != REPLACING

    def __enter__(self) -> OutputFolder:
        if self.path.exists() and self.resume:
            self.mode = RESUMED
            self._check_manifest()
            remove_temp_files(self.path)
        elif self.path.exists():
            self.mode = REPLACING
            self._staging = atomic_directory(self.path, self.force)
            self.root = self._staging.__enter__()
        else:
            self.path.mkdir(parents=True)
        if self.manifest is not None and not (self.root / self.manifest[0]).exists():
            name, settings = self.manifest
            atomic_write_text(self.root / name, json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return self

    def _check_manifest(self) -> None:
        if self.manifest is None:
            return
        name, settings = self.manifest
        settings = json.loads(json.dumps(settings))  # as it reads back: tuples become lists
        record = self.path / name
        if not record.is_file():
            if any(self.path.iterdir()):
                raise UsageError(
                    f"cannot --resume into {self.path}: it holds files but no {name}, so it was not written by this "
                    "command: pick another --out, or --force to replace it"
                )
            return
        try:
            recorded = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            recorded = None
        if not isinstance(recorded, dict):
            raise UsageError(f"cannot --resume into {self.path}: {record} is unreadable: --force to start over")
        for key, value in settings.items():
            if recorded.get(key) != value:
                raise UsageError(
                    f"cannot --resume into {self.path}: it was written with {key} {recorded.get(key)!r}, not "
                    f"{value!r}; mixing them would make two sets: use the same flags, another --out, or --force"
                )

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._staging is not None:
            self._staging.__exit__(kind, exc, tb)  # swaps the new folder in, or drops it and re-raises exc
            return
        if exc is not None and self.mode == FRESH and not self._holds_outputs():
            shutil.rmtree(self.path, ignore_errors=True)  # we made it and nothing came of it: leave nothing

    def _holds_outputs(self) -> bool:
        manifest = self.path / self.manifest[0] if self.manifest is not None else None
        return any(p != manifest and p.is_file() for p in self.path.rglob("*"))
