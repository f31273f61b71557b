"""The command a user pastes to resume an interrupted ``generate`` or ``translate`` (signals: gantool.signals)."""

from __future__ import annotations

import shlex


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
