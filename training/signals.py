"""Ctrl-C and SIGTERM during training: a request to stop at the next step boundary, never a torn step.

Python's default SIGINT raises KeyboardInterrupt wherever the interpreter
happens to be: half-way through an optimizer step or a ``torch.save``. While
training, the handlers here only record the request; the loop finishes the
step, saves, and leaves with exit 130 (SIGINT) or 143 (SIGTERM), the codes a
shell reports for those signals. Further signals while that save runs are
ignored: the request is already recorded, and every file is written
atomically, so even SIGKILL leaves the previous files whole.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Self

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopSignals:
    """Within ``with StopSignals() as stop``: SIGINT/SIGTERM set ``stop.signum``; the previous handlers come back after.

    Outside the main thread Python cannot install handlers; the defaults then stay.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_CODES:
                self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:  # the first request decides the exit code; repeats change nothing
            self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[signal.Signals(self.signum)] if self.signum is not None else 0
