"""The pipeline behind ``gantool translate``: decode ahead of compute, encode behind it.

Three stages work at once:

- readers (a thread pool) decode, convert, resize and pad the next images;
- the calling thread groups them by padded size and runs each full group
  through the backend as one batch (torch and onnxruntime release the GIL);
- writers (a thread pool) crop, encode the PNGs and write them.

Both queues are bounded (a few batches), so memory stays flat for any number
of inputs. A file that cannot be decoded is returned as ``Skipped`` with its
reason and the rest go on; anything else (a full disk, a backend failure)
stops the run. Each output is written atomically, so every file under its
final name is complete; ``stop()`` (Ctrl-C, SIGTERM) ends the run early once
the batches already computed are on disk, for ``--resume`` to continue.

Output does not depend on the batch size: every image is prepared, run and
cropped on its own terms, and the backends keep images independent.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from gantool.runtime.image_io import Decoding, Source, read_image, write_png
from gantool.runtime.translator import Translator


@dataclass(frozen=True)
class Prepared:
    """One decoded input, ready for the network."""

    source: Source
    height: int  # the output's size: the size it was decoded at (its own, --size, or rounded)
    width: int
    pixels: np.ndarray  # float32 C×H'×W', padded to padded_size(height, width)


@dataclass(frozen=True)
class Skipped:
    """An input that could not be read, and why (one line)."""

    source: Source
    reason: str


@dataclass
class Outcome:
    """What a run did: images written, inputs skipped, wall time, whether ``stop()`` ended it early."""

    written: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def translate_files(
    translator: Translator,
    sources: list[Source],
    folder: Path,
    *,
    decoding: Decoding,
    batch_size: int,
    on_written: Callable[[int], None] | None = None,
    on_skipped: Callable[[Skipped], None] | None = None,
    stop: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> Outcome:
    """Translate ``sources`` into ``folder`` (each at ``folder / source.output``), decoded as ``decoding`` says.

    ``on_written(k)`` is called from writer threads as files land; ``stop()``, polled between inputs, ends
    the run early (``Outcome.stopped``) after writing what was computed.
    """
    workers = workers or default_workers()
    prefetch = batch_size + 2 * workers  # decoded images in flight ahead of compute
    max_buffered = 2 * batch_size  # images waiting for their size group to fill (mixed sizes)
    outcome = Outcome()

    started = time.perf_counter()
    readers = ThreadPoolExecutor(workers, thread_name_prefix="gantool-read")
    writers = ThreadPoolExecutor(workers, thread_name_prefix="gantool-write")
    reads: deque[Future[Prepared | Skipped]] = deque()
    writes: deque[Future[int]] = deque()
    groups: dict[tuple[int, ...], list[Prepared]] = {}
    upcoming = iter(sources)

    def refill() -> None:
        while len(reads) < prefetch and (source := next(upcoming, None)) is not None:
            reads.append(readers.submit(_read, translator, source, decoding))

    def run(key: tuple[int, ...]) -> None:
        batch = groups.pop(key)
        outputs = translator.runner.run(np.stack([job.pixels for job in batch]))  # B×C×H'×W'
        writes.append(writers.submit(_write, translator, folder, batch, outputs, on_written))
        while len(writes) > 2 * workers:  # bound memory: wait for the oldest batch on disk
            outcome.written += writes.popleft().result()

    try:
        refill()
        while reads:
            if stop is not None and stop():
                outcome.stopped = True
                groups.clear()  # decoded, not computed: --resume redoes them
                break
            result = reads.popleft().result()
            refill()
            if isinstance(result, Skipped):
                outcome.skipped.append(result)
                if on_skipped is not None:
                    on_skipped(result)
                continue
            key = result.pixels.shape
            groups.setdefault(key, []).append(result)
            if len(groups[key]) >= batch_size:
                run(key)
            elif sum(len(group) for group in groups.values()) >= max_buffered:
                run(max(groups, key=lambda k: len(groups[k])))  # many sizes: run the fullest group now
        for key in list(groups):
            run(key)
        while writes:
            outcome.written += writes.popleft().result()
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _read(translator: Translator, source: Source, decoding: Decoding) -> Prepared | Skipped:
    """Decode and prepare one input on a reader thread; a file that will not decode becomes Skipped."""
    try:
        pixels = read_image(source.path, translator.spec.channels, decoding)
    except Exception as exc:  # noqa: BLE001 -- image decoders raise many types on bad files; report, go on
        return Skipped(source, _reason(exc))
    height, width = pixels.shape[:2]
    return Prepared(source, height, width, translator.prepare(pixels))


def _write(
    translator: Translator,
    folder: Path,
    batch: list[Prepared],
    outputs: np.ndarray,
    on_written: Callable[[int], None] | None,
) -> int:
    """Crop, encode and write one batch on a writer thread; returns the number of files written."""
    for job, output in zip(batch, outputs, strict=True):
        write_png(folder / job.source.output, translator.finish(output, job.height, job.width))
        if on_written is not None:
            on_written(1)
    return len(batch)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file Pillow can read"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
