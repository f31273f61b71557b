"""The root command's error lines: a usage error, an abort, Ctrl-C, each in one line, with whatever typer is installed.

typer's parser raised click's exception classes up to typer 0.25 and raises those of its own private copy of
click since; gantool recognises them by click's documented interface, so these hold across typer versions
(the wording of a message is typer's and may change, its shape is ours).
"""

from __future__ import annotations

import pytest
import typer

from gantool import __version__
from gantool.cli import cli_error


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, starts, help_of",
    [
        (["train", "gan", "--epochs", "abc"], "error: Invalid value for '--epochs'", "gantool train gan"),
        (["frobnicate"], "error: No such command 'frobnicate'", "gantool"),
        (["generate"], "error: Missing argument", "gantool generate"),
        (["export", "--no-such-flag"], "error: No such option", "gantool export"),
        (["doctor", "extra"], "error: Got unexpected extra argument", "gantool doctor"),
    ],
)
def test_a_usage_error_is_one_line_pointing_at_the_commands_help(
    cli, args: list[str], starts: str, help_of: str
) -> None:
    result = cli(*args)
    line = one_error_line(result.stderr)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert line.startswith(starts) and line.endswith(f" (see '{help_of} --help')"), line


def test_version_and_help_exit_0(cli) -> None:
    version = cli("--version")
    assert (version.exit_code, version.stdout.strip(), version.stderr) == (0, f"gantool {__version__}", "")
    helped = cli("--help")
    assert helped.exit_code == 0 and "generate" in helped.stdout and not helped.stderr


def test_an_abort_exits_130_in_one_line(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def abort() -> None:
        raise typer.Abort()

    monkeypatch.setattr("gantool.runtime.doctor_cli.probe_all", abort)
    result = cli("doctor")
    assert result.exit_code == 130 and one_error_line(result.stderr) == "error: aborted"


def test_ctrl_c_exits_130_without_a_traceback(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("gantool.runtime.doctor_cli.probe_all", interrupted)
    result = cli("doctor")
    assert result.exit_code == 130 and "Traceback" not in result.stderr
    assert result.stderr.strip() in ("", "error: aborted")  # typer >= 0.28 exits 130 itself, older typer aborts


def test_a_bug_keeps_its_traceback(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only CLI and gantool errors become one line: anything else is a bug, and its traceback is the report."""

    def broken() -> None:
        raise ValueError("a bug")

    monkeypatch.setattr("gantool.runtime.doctor_cli.probe_all", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli("doctor")


def test_cli_errors_are_recognised_by_clicks_interface_not_by_class() -> None:
    assert cli_error(typer.BadParameter("must be positive")) == ("Invalid value: must be positive", 2)
    assert cli_error(ValueError("not a CLI error")) is None
    assert cli_error(typer.Exit(3)) is None  # an exit code alone is not an error
