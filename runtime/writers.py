"""Where generated images go: a folder of PNGs, one .npz array, or one .png grid.

Every writer is all-or-nothing: a folder is filled in a staging directory and
renamed into place at the end (gantool.files.atomic_directory), files are
written to a temporary name and renamed. A failure or Ctrl-C leaves the old
output (or nothing) behind, never a half-written one.

The folder writer encodes and writes on a small thread pool, so PNG encoding
(Pillow and file I/O release the GIL) overlaps the next batch's compute; the
queue of pending batches is bounded so memory stays flat for any N.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np

from gantool.errors import UsageError
from gantool.files import atomic_directory, atomic_save, atomic_write_bytes
from gantool.images import grid, png_bytes
from gantool.spec import ModelSpec

MIN_NAME_WIDTH = 6  # 000000.png … 999999.png; wider only when n needs it
REFUSED_SUFFIXES = {".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".npy"}


def output_kind(path: Path) -> str:
    """``npz`` for FILE.npz, ``grid`` for FILE.png, ``dir`` for anything else (a folder of PNGs)."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix == ".png":
        return "grid"
    if suffix in REFUSED_SUFFIXES and not path.is_dir():
        raise UsageError(f"cannot write {suffix} output: --out takes a folder, a .npz file or a .png grid")
    return "dir"


def sample_name(index: int, n: int) -> str:
    """File name of sample ``index`` out of ``n``: zero-padded so names sort in sample order."""
    width = max(MIN_NAME_WIDTH, len(str(max(n - 1, 0))))
    return f"{index:0{width}d}.png"


class Writer(contextlib.AbstractContextManager["Writer"]):
    """Receives uint8 batches in sample order; commits the output on a clean exit only."""

    def write(self, start: int, batch: np.ndarray) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Make the output appear at its final path."""

    def abort(self, exc: BaseException) -> None:
        """Drop everything written so far (``exc`` is why)."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.commit()
        else:
            self.abort(exc)


class DirectoryWriter(Writer):
    """One PNG per sample, encoded on worker threads into a staging folder."""

    def __init__(self, path: Path, n: int, force: bool, workers: int | None = None) -> None:
        self.path, self.n = path, n
        self._folder = atomic_directory(path, force)
        self._staging = self._folder.__enter__()
        self._workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="gantool-writer")
        self._pending: deque[Future[None]] = deque()

    def write(self, start: int, batch: np.ndarray) -> None:
        self._pending.append(self._pool.submit(self._write_batch, start, batch))
        while len(self._pending) > 2 * self._workers:  # bound memory: wait for the oldest batch
            self._pending.popleft().result()

    def _write_batch(self, start: int, batch: np.ndarray) -> None:
        for offset, image in enumerate(batch):
            (self._staging / sample_name(start + offset, self.n)).write_bytes(png_bytes(image))

    def commit(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()  # re-raises a worker's error
        except BaseException as exc:
            self.abort(exc)
            raise
        self._pool.shutdown()
        self._folder.__exit__(None, None, None)  # renames the staging folder into place

    def abort(self, exc: BaseException) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        with contextlib.suppress(BaseException):  # the folder helper re-raises exc after removing the staging folder
            self._folder.__exit__(type(exc), exc, exc.__traceback__)


class ArrayWriter(Writer):
    """Collects all samples, then writes one .npz (``images`` uint8 N×H×W×C and ``seed``) or one .png grid."""

    def __init__(self, path: Path, n: int, spec: ModelSpec, seed: int, kind: str) -> None:
        self.path, self.seed, self.kind = path, seed, kind
        self.images = np.zeros((n, spec.height, spec.width, spec.channels), dtype=np.uint8)

    def write(self, start: int, batch: np.ndarray) -> None:
        self.images[start : start + len(batch)] = batch

    def commit(self) -> None:
        if self.kind == "grid":
            atomic_write_bytes(self.path, png_bytes(grid(self.images)))
            return

        def save(tmp: Path) -> None:
            with tmp.open("wb") as handle:  # a handle, so numpy does not append ".npz" to the temp name
                np.savez(handle, images=self.images, seed=np.int64(self.seed))

        atomic_save(self.path, save)


def open_writer(path: Path, n: int, spec: ModelSpec, seed: int, force: bool) -> Writer:
    """The writer for ``path``'s kind (see output_kind)."""
    kind = output_kind(path)
    if kind == "dir":
        return DirectoryWriter(path, n, force)
    return ArrayWriter(path, n, spec, seed, kind)
