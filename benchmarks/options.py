"""Parsing ``gantool bench``'s arguments: MODEL paths into targets, and the list options.

Each bad value is one usage error (exit 2) naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from gantool.artifacts import (
    CHECKPOINT_SUFFIX,
    DIRECTIONS,
    ENGINE_SUFFIX,
    FP16_ENGINE_SUFFIX,
    FP16_ONNX_SUFFIX,
    GENERATOR_STEM,
    ONNX_SUFFIX,
    checkpoint_in,
)
from gantool.engines import Size, parse_size
from gantool.errors import ArtifactError, UsageError


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


@dataclass(frozen=True)
class Target:
    """One generator to bench: the path its backends resolve from, the translator direction, the rows' model name."""

    name: str  # the artifact stem: generator, generator_a2b, generator_b2a (qualified by folder when ambiguous)
    path: Path  # as the user gave it: each backend finds its own file (checkpoint, ONNX, engine) from it
    direction: str | None


def expand_models(models: list[Path], direction: str | None) -> list[Target]:
    """Each MODEL as the generators it holds: a run dir means all of its generators, a file means itself.

    A CycleGAN run dir gives both translators, or the one ``--direction`` names;
    a folder with no checkpoint stays one target, so each backend can say in its
    row why it found nothing there. Two targets of the same stem (two run dirs)
    are told apart by their folder: ``digits/generator``.
    """
    targets: list[Target] = []
    for model in dict.fromkeys(models):
        if not model.exists():
            raise ArtifactError(f"{model} does not exist")
        if not model.is_file():
            targets += _run_dir_targets(model, direction)
        else:
            targets.append(Target(artifact_stem(model), model, direction))
    return _unique_names(targets)


def _run_dir_targets(run_dir: Path, direction: str | None) -> list[Target]:
    targets = []
    if checkpoint_in(run_dir).is_file():
        targets.append(Target(GENERATOR_STEM, run_dir, None))  # the command refuses a --direction for it
    translators = [d for d in DIRECTIONS if checkpoint_in(run_dir, d).is_file()]
    if translators:
        for wanted in [direction] if direction is not None else translators:
            targets.append(Target(artifact_stem(checkpoint_in(run_dir, wanted)), run_dir, wanted))
    if not targets:
        targets.append(Target(run_dir.name or str(run_dir), run_dir, direction))
    return targets


def artifact_stem(path: Path) -> str:
    """``generator_a2b`` for generator_a2b.safetensors, .onnx, .fp16.onnx or .fp16.engine."""
    for suffix in (FP16_ENGINE_SUFFIX, ENGINE_SUFFIX, FP16_ONNX_SUFFIX, ONNX_SUFFIX, CHECKPOINT_SUFFIX):
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.name.removesuffix(suffix)
    return path.stem


def _unique_names(targets: list[Target]) -> list[Target]:
    """Targets sharing a name qualified by their folder's name, or by its path if that is not enough either.

    A file is then named by its file name: a run dir's translator and one of its
    exported files stay apart (``run/generator_a2b``, ``run/generator_a2b.onnx``).
    """
    names = [target.name for target in targets]
    renamed = targets
    for full in (False, True):
        if len({target.name for target in renamed}) == len(renamed):
            break
        renamed = [
            replace(target, name=_qualified(target, full)) if names.count(target.name) > 1 else target
            for target in targets
        ]
    return renamed


def _qualified(target: Target, full: bool) -> str:
    folder = target.path.parent if target.path.is_file() else target.path
    label = target.path.name if target.path.is_file() else target.name
    return f"{folder if full else folder.resolve().name}/{label}"
