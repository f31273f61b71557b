"""``gantool export --triton REPO``: the exported files as a native NVIDIA Triton model repository.

One Triton model per file served: ``REPO/<name>/config.pbtxt`` (see
export/triton_config.py) plus ``REPO/<name>/1/model.onnx``
(``onnxruntime_onnx``) or ``model.plan`` (``tensorrt_plan``). Names come from
the file: ``generator.onnx`` → ``generator``, ``generator_a2b.fp16.onnx`` →
``generator_a2b_fp16``, the engine ``generator.fp16.engine`` →
``generator_fp16_trt``: a name of its own, so Triton serves ONNX and plan side
by side and a client picks one by name.

Every model is built complete in a staging folder beside REPO (inside it only
when REPO is a mount point of its own), then renamed into place: Triton never
sees a model folder without its config, and a failure leaves REPO as it was.
The model file is hard-linked when it can be (no copy of a 45 MB translator;
export replaces files by rename, so the link keeps the version served).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gantool.artifacts import ENGINE_SUFFIX, ONNX_SUFFIX
from gantool.errors import GantoolError
from gantool.export.pbtxt import to_pbtxt
from gantool.export.triton_config import PLATFORMS, TritonSettings, model_config
from gantool.files import DiskFull, check_output_path, is_disk_full

VERSION = "1"
CONFIG_FILE = "config.pbtxt"
MODEL_FILES = {"onnx": "model.onnx", "plan": "model.plan"}
_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class RepoEntry:
    """One model of the repository: its folder's name, the file it serves, and how."""

    name: str
    source: Path
    kind: str  # "onnx" | "plan"

    @property
    def platform(self) -> str:
        return PLATFORMS[self.kind]


@dataclass(frozen=True)
class TritonModel:
    """One model written: where, from what, and what its config says (a row of the export's report)."""

    path: Path
    source: Path
    platform: str
    precision: str
    max_batch_size: int


def model_name(source: Path, prefix: str = "") -> str:
    """``generator.fp16.onnx`` → ``generator_fp16``; ``generator.fp16.engine`` → ``generator_fp16_trt``."""
    stem = source.name.removesuffix(ONNX_SUFFIX).removesuffix(ENGINE_SUFFIX)
    name = prefix + _NAME.sub("_", stem) + ("_trt" if source.name.endswith(ENGINE_SUFFIX) else "")
    return name or "model"


def plan_repository(
    repo: Path, onnx_files: list[Path], engines: list[Path], prefix: str, force: bool
) -> list[RepoEntry]:
    """The entries to write, refused now (before any export work) if one exists without ``--force``."""
    entries = [RepoEntry(model_name(p, prefix), p, "onnx") for p in onnx_files]
    entries += [RepoEntry(model_name(p, prefix), p, "plan") for p in engines]
    seen: dict[str, Path] = {}
    for entry in entries:
        if entry.name in seen:
            raise GantoolError(
                f"{seen[entry.name].name} and {entry.source.name} would both be Triton model {entry.name}"
            )
        seen[entry.name] = entry.source
        check_output_path(repo / entry.name, force, "Triton model")
    return entries


def write_repository(repo: Path, entries: list[RepoEntry], settings: TritonSettings, force: bool) -> list[TritonModel]:
    """Read and check every source, then write all entries at once; returns what was written."""
    built = [model_config(e.name, e.kind, e.source, settings) for e in entries]  # every refusal comes first
    try:
        repo.mkdir(parents=True, exist_ok=True)
        staging = _staging(repo)
    except OSError as exc:
        raise _write_error(repo, exc) from None
    try:
        for entry, (config, _) in zip(entries, built, strict=True):
            folder = staging / entry.name / VERSION
            folder.mkdir(parents=True)
            _link_or_copy(entry.source, folder / MODEL_FILES[entry.kind])
            (staging / entry.name / CONFIG_FILE).write_text(to_pbtxt(config), encoding="utf-8")
        _commit(staging, repo, [entry.name for entry in entries], force)
    except OSError as exc:
        raise _write_error(repo, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [
        TritonModel(repo / entry.name, entry.source, entry.platform, served.precision, served.max_batch)
        for entry, (_, served) in zip(entries, built, strict=True)
    ]


def _staging(repo: Path) -> Path:
    """A fresh folder on REPO's file system, outside REPO unless REPO is a mount point (a container volume)."""
    parent = repo.resolve().parent
    beside = os.stat(parent).st_dev == os.stat(repo).st_dev and os.access(parent, os.W_OK | os.X_OK)
    return Path(tempfile.mkdtemp(prefix=f".{repo.name}.", suffix=".partial", dir=parent if beside else repo))


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows it, else a copy."""
    try:
        os.link(source, target)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        shutil.copy2(source, target)


def _commit(staging: Path, repo: Path, names: list[str], force: bool) -> None:
    """Rename every staged model into REPO (with --force, over the old one); on a failure put the old ones back."""
    trash = staging / ".replaced"
    trash.mkdir()
    done: list[str] = []
    try:
        for name in names:
            target = repo / name
            if target.exists() or target.is_symlink():
                if not force:
                    raise GantoolError(f"Triton model {target} appeared while writing; nothing was written")
                os.replace(target, trash / name)
            os.replace(staging / name, target)
            done.append(name)
    except BaseException:
        for name in done:
            shutil.rmtree(repo / name, ignore_errors=True)
        for old in trash.iterdir():
            os.replace(old, repo / old.name)
        raise


def _write_error(repo: Path, exc: OSError) -> GantoolError:
    if is_disk_full(exc):
        return DiskFull(repo, exc)
    return GantoolError(f"cannot write Triton model repository {repo}: {exc.strerror or exc}")
