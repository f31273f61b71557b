"""A progress bar on stderr for long commands, and nothing at all (not even a rich import) off a terminal."""

from __future__ import annotations

import sys
from typing import Any, final

import typer


@final
class Progress:
    """``with Progress(total, "translating") as bar: bar.advance(n); bar.log("a line")``.

    On a terminal a transient rich bar shows count and time left; ``log`` prints
    above it without tearing it. Elsewhere (pipes, CI logs) ``advance`` does
    nothing and ``log`` is a plain line on stderr. ``advance`` may be called
    from worker threads (rich's Progress is thread-safe).
    """

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if not sys.stderr.isatty():
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn(self.label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, count)

    def log(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            typer.echo(line, err=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
