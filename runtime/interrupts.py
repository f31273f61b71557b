"""Ctrl-C and SIGTERM during ``generate`` and ``translate``: stop cleanly, say how to resume.

The first signal only sets a flag: the command stops computing, lets the files
in flight finish (each is written atomically, so none is partial), and leaves
with ``Interrupted`` (exit 130 for SIGINT, 143 for SIGTERM, as shells report a
signal) naming how much was written and the exact ``--resume`` command. A
second signal raises KeyboardInterrupt at once, for a user who will not wait:
still no partial file, since every temporary is removed on the way out.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from types import FrameType, TracebackType
from typing import final

SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


@final
class StopSignals(contextlib.AbstractContextManager["StopSignals"]):
    """``with StopSignals() as stop: ... if stop.requested: ...``: SIGINT and SIGTERM become a request to stop.

    Handlers can only be installed from the main thread; elsewhere (an embedding
    application's worker) the process's own handling is left alone.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM); a bare KeyboardInterrupt counts as SIGINT."""
        return 128 + int(self.signum or signal.SIGINT)

    def describe(self) -> str:
        return SIGNAL_NAMES.get(signal.Signals(self.signum or signal.SIGINT), f"signal {self.signum}")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]  # whatever signal.signal returned before


def command_line(command: str, arguments: list[str], options: dict[str, object]) -> str:
    """``gantool COMMAND ARGS --opt value --flag``, shell-quoted, for the user to paste back.

    ``options`` maps option names to values: None and False are left out, True is a bare flag.
    """
    words = ["gantool", command, *arguments]
    for name, value in options.items():
        if value is None or value is False:
            continue
        words.append(name)
        if value is not True:
            words.append(str(value))
    return shlex.join(words)
