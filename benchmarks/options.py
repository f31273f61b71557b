"""Parsing ``gantool bench``'s list options: each bad value is one usage error (exit 2) naming the option."""

from __future__ import annotations

from gantool.engines import Size, parse_size
from gantool.errors import UsageError


def parse_backends(text: str) -> list[str]:
    """Backend names in the order given; ``all`` is every registered backend."""
    from gantool.runtime import registry

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--backends is empty")
    if "all" in names:
        return registry.names()
    for name in names:
        if name not in registry.BACKENDS:
            raise UsageError(
                f"unknown backend {name!r} in --backends; choose from: all, {', '.join(registry.BACKENDS)}"
            )
    return list(dict.fromkeys(names))


def parse_precisions(text: str) -> list[str]:
    from gantool.runtime.backends.base import PRECISIONS

    wanted = [part.strip() for part in text.split(",") if part.strip()]
    if not wanted or any(part not in PRECISIONS for part in wanted):
        raise UsageError(f"--precisions takes a comma-separated list of {', '.join(PRECISIONS)}, got {text!r}")
    return list(dict.fromkeys(wanted))


def parse_batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--batch-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise UsageError(f"--batch-sizes must be integers ≥ 1, got {text!r}")
    return list(dict.fromkeys(sizes))


def parse_image_sizes(text: str) -> list[Size]:
    """``128,192x256`` → [(128, 128), (192, 256)]: a side alone means a square; each side a multiple of 4, ≥ 8."""
    from gantool.spec import MIN_SIDE, SIZE_MULTIPLE, fits_translator

    sizes: list[Size] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            height, width = parse_size(part)
        except UsageError:
            raise UsageError(f"--sizes takes sizes like 256 or 192x256, got {part!r}") from None
        if not fits_translator(height, width):
            raise UsageError(
                f"--sizes: a translator takes sides that are multiples of {SIZE_MULTIPLE}, at least {MIN_SIDE}, "
                f"got {height}x{width}"
            )
        sizes.append((height, width))
    if not sizes:
        raise UsageError("--sizes is empty")
    return list(dict.fromkeys(sizes))
