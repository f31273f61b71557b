"""Atomic output: nothing half-written, nothing overwritten without ``--force``.

Every file gantool writes goes to a temporary name in the destination folder
and is renamed into place only once complete, so an interrupted or failed
command never leaves a truncated artifact where a good one is expected: a file
under its final name is always whole, which is what ``--resume`` relies on.
A full disk (or quota) is reported here, in one place, as ``DiskFull``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from gantool.errors import GantoolError, UsageError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: mkstemp/mkdtemp create owner-only entries, outputs should honour the umask

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
TEMP_SUFFIX = ".tmp"
# atomic_path's temporary names: "." + final name + "." + mkstemp's 8 random characters + ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


class DiskFull(GantoolError):
    """No space (or no quota) left while writing ``path``; the partial file has already been removed."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"disk full: could not write {path} ({exc.strerror or exc}); nothing partial was left behind")
        self.path = path


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system is out of space or over quota (ENOSPC, EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def check_output_path(path: Path, force: bool, what: str = "output") -> None:
    """Refuse an existing output unless forced, and a destination we cannot write.

    Called before any work starts, so a refusal touches nothing.
    """
    if path.exists() and not force:
        raise UsageError(f"{what} {path} already exists (use --force to overwrite)")
    parent = path.parent if path.parent != Path("") else Path(".")
    probe = parent
    while not probe.exists():  # the nearest existing ancestor decides writability
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"cannot write {what} {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} {path}: {probe} is not writable")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:  # the folder cannot hold files (read-only, /proc, a full disk): say where
        if is_disk_full(exc):
            raise DiskFull(path, exc) from None
        raise GantoolError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # after writing: some writers (safetensors) recreate the file as 0600
        os.replace(tmp, path)
    except OSError as exc:
        if is_disk_full(exc):  # raised by the caller's writer or by the rename: either way, say it plainly
            raise DiskFull(path, exc) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> int:
    """Delete what a killed run left of atomic_path's temporary files under ``folder``; returns how many.

    Only names of atomic_path's own pattern are touched: a killed process (SIGKILL, power loss) cannot
    run its cleanup, and ``--resume`` must not mistake those leftovers for outputs or keep them forever.
    """
    removed = 0
    for parent, _folders, names in os.walk(folder):
        for name in names:
            if _TEMP_NAME.match(name):
                Path(parent, name).unlink(missing_ok=True)
                removed += 1
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(path: Path, save: Callable[[Path], None]) -> None:
    """Run ``save(tmp)`` (any library's writer) and move the result onto ``path``."""
    with atomic_path(path) as tmp:
        save(tmp)


@contextlib.contextmanager
def atomic_directory(path: Path, force: bool) -> Iterator[Path]:
    """Yield a fresh staging folder beside ``path``; it becomes ``path`` on success.

    With ``force`` an existing ``path`` is replaced only after the new one is
    complete, so a failure keeps the old output intact.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path, exc) from None
        raise
    os.chmod(staging, 0o777 & ~_UMASK)
    try:
        yield staging
        if path.exists():
            if not force:
                raise GantoolError(f"{path} appeared while writing; nothing was written")
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, trash / path.name)
            os.replace(staging, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints, ONNX files and engines can be hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
