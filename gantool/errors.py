"""Errors that reach the user as one line on stderr, never as a traceback.

Every stage raises these for problems the user can fix (a missing file, a bad
flag value, an uninstalled backend). The root CLI turns them into
``error: <message>`` and the exit code below; anything else is a bug and is
allowed to show its traceback.
"""

from __future__ import annotations


class GantoolError(Exception):
    """A problem with the user's input or environment, reported in one line."""

    exit_code: int = 1


class UsageError(GantoolError):
    """A bad argument or option value: exit status 2, like click's own usage errors."""

    exit_code = 2


class ArtifactError(GantoolError):
    """A checkpoint, ONNX file or spec that is missing, corrupt or not a gantool model."""


class BackendUnavailable(GantoolError):
    """A backend that is unknown, not installed, or cannot run the given artifact."""


class Interrupted(GantoolError):
    """Stopped by a signal after saving what a resume needs: exit 130 (SIGINT) or 143 (SIGTERM), as shells report."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RankLost(GantoolError):
    """A training process lost the others of its torchrun job (one died, or the network failed)."""
