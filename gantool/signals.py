"""Ctrl-C and SIGTERM as a request to stop at a safe point, for training, ``generate`` and ``translate``.

Python's default SIGINT raises KeyboardInterrupt wherever the interpreter
happens to be: half-way through an optimizer step, a ``torch.save`` or a PNG
write. Inside ``with StopSignals() as stop`` the handlers only record the
request; the command finishes what is in flight (a training step, the files
being written, each atomically), saves what it must, and leaves with exit 130
(SIGINT) or 143 (SIGTERM), the codes a shell reports for those signals.

A second signal is either ignored (training: the save that follows must not be
torn; every file is atomic, so even SIGKILL leaves the previous files whole)
or stops at once with KeyboardInterrupt (``repeat_stops_now``: generate and
translate, for a user who will not wait; their temporaries are removed on the
way out).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, final

SIGNALS = (signal.SIGINT, signal.SIGTERM)
DESCRIPTIONS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


@final  # __enter__ returns exactly this class
class StopSignals:
    """``with StopSignals() as stop: ... if stop.requested: ...``; the previous handlers come back after.

    Handlers can only be installed from the main thread; elsewhere (an embedding
    application's worker) the process's own handling is left alone.
    """

    def __init__(self, repeat_stops_now: bool = False) -> None:
        self.signum: int | None = None
        self._repeat_stops_now = repeat_stops_now
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:  # the first request decides the exit code
            self.signum = signum
        elif self._repeat_stops_now:
            raise KeyboardInterrupt

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        """``SIGINT`` / ``SIGTERM``; empty while nothing was requested."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM); a bare KeyboardInterrupt counts as SIGINT."""
        return 128 + int(self.signum or signal.SIGINT)

    def describe(self) -> str:
        """``Ctrl-C (SIGINT)`` or ``SIGTERM``, for a message to the user."""
        return DESCRIPTIONS.get(signal.Signals(self.signum or signal.SIGINT), f"signal {self.signum}")
