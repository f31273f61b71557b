"""Peak memory while a bench cell runs: the process's RSS and, on GPU rows, the GPU memory in use.

A background thread samples every ``interval_s`` (5 ms) from the moment the
cell starts until it ends, plus once at each end, and keeps the highest value.
Sampling rather than reading the kernel's high-water mark (VmHWM) because that
mark covers the whole life of the process, and a cell wants the peak while it
ran; a 5 ms sampler costs a /proc read per sample, far below the noise of any
timing it runs beside, and can only miss a spike shorter than its interval.

- RSS is of the **whole process** (psutil ``memory_info().rss``): the loaded
  model, the engines' arenas and everything loaded earlier in the run are in
  it, so it reads as "what this process needed", not "what this cell added".
- GPU memory is ``total − free`` from ``cudaMemGetInfo`` on the current device:
  what the device has in use, which includes other processes on the same GPU.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

MIB = 2**20
SAMPLE_INTERVAL_S = 0.005


def gpu_memory_in_use() -> int | None:
    """Bytes in use on the current CUDA device (total − free), or None when CUDA cannot tell here."""
    from gantool import cuda
    from gantool.errors import GantoolError

    try:
        free, total = cuda.check(cuda.cuda_runtime().cudaMemGetInfo(), "reading GPU memory use")
    except GantoolError:  # no cuda-python, no driver, no device: the row says None
        return None
    return int(total) - int(free)


class PeakMemory:
    """``with PeakMemory(gpu=...) as peak: ...``, then ``peak.rss_mb`` and ``peak.gpu_mb`` (MiB; gpu None if off)."""

    def __init__(self, gpu: bool = False, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        import psutil

        self._process = psutil.Process()
        self._gpu = gpu
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, name="bench-memory", daemon=True)
        self._rss = 0
        self._gpu_bytes: int | None = None

    @property
    def rss_mb(self) -> float:
        """The highest process RSS seen, in MiB."""
        return self._rss / MIB

    @property
    def gpu_mb(self) -> float | None:
        """The highest GPU memory in use seen, in MiB; None when not asked for, or when CUDA could not tell."""
        return None if self._gpu_bytes is None else self._gpu_bytes / MIB

    def sample(self) -> None:
        """Read RSS (and GPU memory) once and keep the maxima."""
        self._rss = max(self._rss, self._process.memory_info().rss)
        if self._gpu:
            used = gpu_memory_in_use()
            if used is None:
                self._gpu = False  # it will not start working mid-cell: stop asking
            else:
                self._gpu_bytes = max(self._gpu_bytes or 0, used)

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def __enter__(self) -> Self:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
