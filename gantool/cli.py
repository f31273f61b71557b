"""The ``gantool`` command: one Typer app per command group, joined here.

Errors leave as one line on stderr (``error: ...``) with a non-zero status:
2 for usage errors, 1 for everything else the user can fix, 130 on Ctrl-C.
Each stage keeps its heavy imports (torch, onnx, onnxruntime) inside its
commands, so ``gantool --help`` and the onnxruntime path start fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from gantool import __version__
from gantool.benchmarks.cli import bench
from gantool.benchmarks.quality.cli import eval_command
from gantool.errors import GantoolError, Interrupted, RankLost, UsageError
from gantool.export.cli import export
from gantool.runtime.cli import generate
from gantool.runtime.doctor_cli import doctor
from gantool.runtime.serve.cli import serve
from gantool.runtime.translate_cli import translate
from gantool.training.cli import train_app
from gantool.training.import_cli import import_app
from gantool.training.launch import LAUNCHED_ENV


def cli_error(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit status of a usage or CLI error raised by typer's parser; None for any other exception.

    Recognised by click's documented ``ClickException`` interface (``format_message()``, an integer ``exit_code``,
    and ``ctx`` on usage errors), never by class: typer up to 0.25 raises click's own classes, 0.26 and later
    those of its copy of click vendored as the private ``typer._click`` (rooted at ``typer.TyperException`` from
    0.28), and click is no dependency of ours. A ``GantoolError`` has no ``format_message``: it never matches.
    """
    format_message, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
    if not callable(format_message) or not isinstance(code, int):
        return None
    message = str(format_message())  # empty when no arguments were given: the help was shown
    ctx = getattr(exc, "ctx", None)
    if message and code == 2 and ctx is not None:  # a usage error: point at the command's help
        message += f" (see '{ctx.command_path} --help')"
    return message, code


class OneLineErrors(TyperGroup):
    """Report usage and gantool errors as one line on stderr instead of a panel or a traceback.

    The command line as given is kept in the context's ``obj`` (``{"argv": [...]}``):
    ``gantool train --nproc`` hands it on to its workers.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        argv = kwargs.get("args", args[0] if args else None)
        kwargs.setdefault("obj", {"argv": list(sys.argv[1:] if argv is None else argv)})
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort as exc:  # click's Abort on typer < 0.26, typer's own after: typer.Abort names both
            _fail("aborted", 130, standalone_mode, exc)
        except GantoolError as exc:
            _fail(str(exc), exc.exit_code, standalone_mode, exc)
        except OSError as exc:  # disk full, permission denied: the system's words, one line
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}", 1, standalone_mode, exc)
        except Exception as exc:
            error = cli_error(exc)
            if error is None:
                raise  # a bug: its traceback is the report
            _fail(*error, standalone_mode, exc)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int, standalone_mode: bool, exc: BaseException) -> None:
    if not standalone_mode:
        raise exc
    if message and not _left_to_others(exc):
        rank = int(os.environ.get("RANK", "0"))
        typer.echo(f"error: {f'rank {rank}: ' if rank > 0 else ''}{message}", err=True)
    sys.exit(code)


def _left_to_others(exc: BaseException) -> bool:
    """Whether another process reports this error, in a training job of many (``torchrun``, ``--nproc``).

    Every rank makes the same checks and stops at the same step, so ranks after
    0 keep usage errors and interrupts to themselves. A lost rank is reported by
    the ``--nproc`` launcher, which knows which rank died and how.
    """
    if int(os.environ.get("RANK", "0")) > 0 and isinstance(exc, (UsageError, Interrupted, RankLost)):
        return True
    return isinstance(exc, RankLost) and LAUNCHED_ENV in os.environ


app = typer.Typer(
    cls=OneLineErrors,
    name="gantool",
    help="Train GANs, export them to ONNX/TensorRT, and sample from them fast.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(train_app, name="train")
app.add_typer(import_app, name="import")
app.command()(export)
app.command()(generate)
app.command()(translate)
app.command()(bench)
app.command("eval")(eval_command)
app.command()(doctor)
app.command()(serve)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gantool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Train GANs, export them to ONNX/TensorRT, and sample from them fast."""


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gantool")
