"""The cache behind the measured ``auto``: one JSON file per (machine, model), invalidated by either changing.

- the machine is its fingerprint (CPU model and cores, GPUs, Python, the
  versions of torch, onnxruntime, TensorRT, numpy and gantool): a new driver
  stack or a new gantool measures again;
- the model is the sha256 of every artifact a candidate loads (checkpoint,
  ONNX, engine): retraining or re-exporting measures again.

A file ``cache_dir("auto")/<key>.json`` holds, per batch size, each
candidate's median, spread and run count (``Figure``). Files are written
atomically; one that is corrupt, or carries another machine or model (a key
collision, a hand edit), is ignored and rewritten; a cache folder that cannot
be written only means measuring every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from gantool.errors import GantoolError

FORMAT, VERSION = "gantool.auto", 1
ENGINES = ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy")  # distributions whose version matters


@dataclass(frozen=True)
class Figure:
    """One candidate's measurement at one batch size: median latency, its spread, and how many runs."""

    p50_ms: float
    iqr_ms: float
    runs: int


def machine_fingerprint() -> dict[str, Any]:
    """What makes a measurement on this machine valid: hardware, interpreter, engine versions, gantool's version.

    Versions come from package metadata, so no engine is imported to ask. The GPUs are the machine's, whatever
    ``--device`` asked for (a second scan is cheap: cuda-python is imported by then).
    """
    import gantool
    from gantool.machine import cpu_model
    from gantool.runtime import gpu

    versions = {}
    for package in ENGINES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": [found.describe() for found in gpu.scan().gpus],
        "python": platform.python_version(),
        "versions": versions,
        "gantool": gantool.__version__,
    }


def model_hash(artifacts: dict[str, Path]) -> str:
    """sha256 over each candidate's artifact content (not its path: a copied run dir keeps its figures)."""
    from gantool.files import sha256_file

    by_path = {path: sha256_file(path) for path in set(artifacts.values())}  # two candidates may share a file
    digests = sorted(f"{name}={by_path[path]}" for name, path in artifacts.items())
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


@dataclass(frozen=True)
class CacheFile:
    """Where this (machine, model) pair's figures live, and the identity a file there must carry to be used."""

    path: Path
    machine: dict[str, Any]
    model: str


def cache_file(artifacts: dict[str, Path]) -> CacheFile | None:
    """This machine and model's cache file (``artifacts``: candidate label → the file it loads).

    None when the cache folder cannot be used or an artifact cannot be read: measure, keep nothing.
    """
    from gantool.cache import cache_dir

    try:
        machine, model = machine_fingerprint(), model_hash(artifacts)
        key = hashlib.sha256(json.dumps(machine, sort_keys=True).encode() + model.encode()).hexdigest()[:32]
        return CacheFile(cache_dir("auto") / f"{key}.json", machine, model)
    except OSError:
        return None


def _read(cache: CacheFile) -> dict[str, Any]:
    """The file's contents when it is a gantool.auto file for this machine and model, else an empty document."""
    empty: dict[str, Any] = {"format": FORMAT, "version": VERSION, "machine": cache.machine, "model": cache.model}
    try:
        document = json.loads(cache.path.read_text())
    except (OSError, ValueError):  # absent, unreadable or corrupt: measure, then rewrite it
        return {**empty, "batches": {}}
    if not isinstance(document, dict) or not isinstance(document.get("batches"), dict):
        return {**empty, "batches": {}}
    if any(document.get(key) != value for key, value in empty.items()):
        return {**empty, "batches": {}}
    return document


def _figures_at(document: dict[str, Any], batch: int) -> dict[str, Any]:
    """The document's raw figures at ``batch`` ({} when there are none, or they are not a mapping)."""
    entry = document["batches"].get(str(batch))
    figures = entry.get("figures") if isinstance(entry, dict) else None
    return figures if isinstance(figures, dict) else {}


def cached(cache: CacheFile | None, batch: int, wanted: list[str]) -> dict[str, Figure] | None:
    """The cached figures at ``batch`` when every wanted candidate has one; None means measure."""
    if cache is None or not wanted:
        return None
    entry = _figures_at(_read(cache), batch)
    try:
        figures = {name: Figure(**entry[name]) for name in wanted}
    except (KeyError, TypeError):
        return None
    if not all(isinstance(f.p50_ms, (int, float)) and f.p50_ms > 0 for f in figures.values()):
        return None
    return figures


def store(cache: CacheFile | None, batch: int, figures: dict[str, Figure]) -> None:
    """Merge ``figures`` into the file at ``batch``, atomically; a write that fails costs only a later re-measure."""
    from gantool.files import atomic_write_text

    if cache is None or not figures:
        return
    document = _read(cache)
    old = _figures_at(document, batch)
    document["batches"][str(batch)] = {
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "figures": {**old, **{name: asdict(figure) for name, figure in figures.items()}},
    }
    try:
        atomic_write_text(cache.path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    except (OSError, GantoolError):
        pass
