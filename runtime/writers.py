"""Where generated images go: a folder of PNGs, one .npz array, or one .png grid.

Nothing is ever half-written. A folder is filled one PNG at a time, each
written to a temporary name and renamed when complete (runtime.output_folder),
beside a small manifest (seed, model, count): a run stopped by Ctrl-C, SIGTERM
or a full disk keeps its complete samples and ``--resume`` writes only the
rest. With ``--force`` over an existing folder the new set is staged and
swapped in at the end. An .npz or grid is one file, written whole at the end.

A shard (``--shard K/M``) writes only the samples in ``indices``, under the
names the whole run gives them, so shards' folders merge into the whole set;
its .npz records the global ``indices`` of its rows and the ``shard``.

The folder writer encodes and writes on a small thread pool, so PNG encoding
(Pillow and file I/O release the GIL) overlaps the next batch's compute; the
queue of pending batches is bounded so memory stays flat for any N.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from gantool.errors import GantoolError, UsageError
from gantool.files import atomic_save, atomic_write_bytes
from gantool.images import grid, png_bytes
from gantool.runtime.output_folder import OutputFolder
from gantool.spec import ModelSpec

MIN_NAME_WIDTH = 6  # 000000.png … 999999.png; wider only when n needs it
MANIFEST = ".gantool-generate.json"  # in a sample folder: what its samples are a function of (for --resume)
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
    """Receives uint8 batches in sample order; commits the output on a clean exit only.

    ``written`` and ``skipped`` count samples: written by this run, or already
    complete from an earlier one (``--resume``).
    """

    keeps_partial = False  # whether complete samples stay at the output when the run stops early

    def __init__(self) -> None:
        self.written = 0
        self.skipped = 0

    def pending(self, start: int, count: int) -> bool:
        """Whether any of samples ``start .. start+count-1`` still has to be written (else they count as skipped)."""
        return True

    def write(self, start: int, batch: np.ndarray) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Make the output appear at its final path."""

    def abort(self, exc: BaseException) -> None:
        """Stop after the files in flight (``exc`` is why)."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.commit()
        else:
            self.abort(exc)


class DirectoryWriter(Writer):
    """One PNG per sample, encoded on worker threads, each file atomic; resumable (see runtime.output_folder)."""

    def __init__(
        self,
        path: Path,
        n: int,
        force: bool = False,
        *,
        resume: bool = False,
        settings: dict[str, Any] | None = None,
        workers: int | None = None,
    ) -> None:
        super().__init__()
        self.path, self.n = path, n
        manifest = (MANIFEST, {**(settings or {}), "n": n})
        self._folder = OutputFolder(path, force=force, resume=resume, manifest=manifest).__enter__()
        self.keeps_partial = self._folder.keeps_partial
        self._done = {entry.name for entry in os.scandir(self._folder.root)} if resume else set()
        self._workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="gantool-writer")
        self._pending: deque[Future[None]] = deque()
        self._stopping = False
        self._lock = threading.Lock()

    def pending(self, start: int, count: int) -> bool:
        if all(sample_name(i, self.n) in self._done for i in range(start, start + count)):
            self.skipped += count
            return False
        return True

    def write(self, start: int, batch: np.ndarray) -> None:
        todo = [(start + k, image) for k, image in enumerate(batch) if sample_name(start + k, self.n) not in self._done]
        self.skipped += len(batch) - len(todo)
        self._pending.append(self._pool.submit(self._write_images, todo))
        while len(self._pending) > 2 * self._workers:  # bound memory: wait for the oldest batch
            self._pending.popleft().result()

    def _write_images(self, todo: list[tuple[int, np.ndarray]]) -> None:
        for index, image in todo:
            if self._stopping:
                return
            atomic_write_bytes(self._folder.root / sample_name(index, self.n), png_bytes(image))
            with self._lock:
                self.written += 1

    def commit(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()  # re-raises a worker's error
        except BaseException as exc:
            self.abort(exc)
            raise
        self._pool.shutdown()
        self._folder.__exit__(None, None, None)  # a staged folder (--force) is renamed into place now

    def abort(self, exc: BaseException) -> None:
        self._stopping = True  # workers finish the file in hand, then stop
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(BaseException):  # a staged folder is dropped, and exc re-raised: ours to raise
            self._folder.__exit__(type(exc), exc, exc.__traceback__)


class ArrayWriter(Writer):
    """Collects all samples, then writes one .npz (``images`` uint8 N×H×W×C and ``seed``) or one .png grid.

    With ``shard`` ("2/4") the rows are samples ``first ..``, and the .npz also holds ``indices`` (their global
    sample numbers, int64) and ``shard``: concatenated in shard order, the shards' ``images`` are the whole run's.
    """

    def __init__(
        self, path: Path, n: int, spec: ModelSpec, seed: int, kind: str, *, first: int = 0, shard: str | None = None
    ) -> None:
        super().__init__()
        self.path, self.seed, self.kind, self.first, self.shard = path, seed, kind, first, shard
        shape = (n, spec.height, spec.width, spec.channels)
        try:
            self.images = np.zeros(shape, dtype=np.uint8)
        except MemoryError:  # numpy's _ArrayMemoryError: all N samples are held at once for one file
            gib = math.prod(shape) / 2**30
            raise GantoolError(
                f"{n} images of {spec.height}×{spec.width}×{spec.channels} ({gib:.1f} GiB) do not fit in memory as "
                f"one {kind} file: write a folder of PNGs instead (--out DIR), or fewer at a time (-n)"
            ) from None

    def write(self, start: int, batch: np.ndarray) -> None:
        row = start - self.first
        self.images[row : row + len(batch)] = batch

    def commit(self) -> None:
        if self.kind == "grid":
            atomic_write_bytes(self.path, png_bytes(grid(self.images)))
        else:

            def save(tmp: Path) -> None:
                with tmp.open("wb") as handle:  # a handle, so numpy does not append ".npz" to the temp name
                    if self.shard is None:
                        np.savez(handle, images=self.images, seed=np.int64(self.seed))
                        return
                    indices = np.arange(self.first, self.first + len(self.images), dtype=np.int64)
                    shard = np.array(self.shard)  # a 0-d unicode array: loads without allow_pickle
                    np.savez(handle, images=self.images, seed=np.int64(self.seed), indices=indices, shard=shard)

            atomic_save(self.path, save)
        self.written = len(self.images)


def open_writer(
    path: Path,
    n: int,
    spec: ModelSpec,
    seed: int,
    force: bool,
    *,
    resume: bool = False,
    settings: dict[str, Any] | None = None,
    indices: range | None = None,
    shard: str | None = None,
) -> Writer:
    """The writer for ``path``'s kind (see output_kind); ``settings`` go into a folder's manifest with ``n``.

    ``indices`` (default all ``n``) are the samples this run writes, ``shard`` ("2/4") the shard they are:
    folder files keep their global names, an .npz records the indices.
    """
    kind = output_kind(path)
    if kind == "dir":
        return DirectoryWriter(path, n, force, resume=resume, settings=settings)
    if resume:
        raise UsageError(f"--resume needs a folder --out: {path} is one {kind} file, written whole at the end")
    indices = range(n) if indices is None else indices
    return ArrayWriter(path, len(indices), spec, seed, kind, first=indices.start, shard=shard)
