"""Where gantool keeps what it can recompute: measured ``auto`` choices, and anything else worth not redoing.

A cache is an optimisation, never a requirement: a command must work the same
(only slower) when the cache folder cannot be created or written, so callers
catch ``OSError`` from ``cache_dir`` and carry on without one.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "GANTOOL_CACHE_DIR"


def cache_root() -> Path:
    """$GANTOOL_CACHE_DIR, else $XDG_CACHE_HOME/gantool, else ~/.cache/gantool (not created here).

    A relative XDG_CACHE_HOME is ignored, as the XDG spec says it must be.
    """
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "gantool"
    try:
        return Path.home() / ".cache" / "gantool"
    except RuntimeError as exc:  # no home directory to expand: no cache rather than a failed command
        raise OSError(f"no cache folder: {exc}") from None


def cache_dir(*parts: str) -> Path:
    """The cache folder ``cache_root()/parts...``, created on demand.

    Raises OSError when it cannot be created or written (a read-only home, a
    file in the way): the caller then runs without a cache.
    """
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"cache folder {path} is not writable")
    return path
