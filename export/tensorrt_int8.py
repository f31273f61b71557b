"""``export --trt --int8``: an INT8 TensorRT engine from each INT8 QDQ file, judged by the same quality verdict.

Only an INT8 file that was written (it passed its verdict, or was forced) gets
an engine: ``<stem>.int8.engine`` and its sidecar. TensorRT honours the file's
Q/DQ placement (tensorrt_build.py says how each major builds it), but its
kernels round and fuse differently from onnxruntime's, so the engine is
judged on its own: built into a staging folder beside its destination, run
against PyTorch FP32 on the parity inputs (a NaN or a wrong shape fails; the
difference itself is informative, as for the INT8 file), then through the
quality room's verdict on the staged engine, which is stored in the sidecar
(``extra.quality``) and decides whether the engine is kept.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from gantool.artifacts import engine_path_for
from gantool.checkpoint import read_spec
from gantool.engines import EngineInfo, sidecar_path
from gantool.errors import GantoolError
from gantool.export.int8 import Int8Result, Int8Settings, Staging
from gantool.export.tensorrt_build import TimingCache, build_plan, source_precision
from gantool.export.tensorrt_export import (
    EngineResult,
    TrtRequest,
    _Job,
    _parity,
    _profile,
    _read_timing_cache,
    _write,
)
from gantool.files import atomic_write_bytes, check_output_path

Log = Callable[[str], None]


def plan_int8_engines(checkpoints: Sequence[Path], out_dir: Path, force: bool) -> None:
    """Refuse existing INT8 engines (and sidecars) without --force, before anything is built."""
    for checkpoint in checkpoints:
        engine = engine_path_for(checkpoint, out_dir, "int8")
        check_output_path(engine, force, "TensorRT engine")
        check_output_path(sidecar_path(engine), force, "engine sidecar")


def build_int8_engines(
    pairs: Sequence[tuple[Path, Int8Result]], out_dir: Path, request: TrtRequest, settings: Int8Settings, *, log: Log
) -> tuple[list[EngineResult], list[str]]:
    """One INT8 engine per (checkpoint, INT8 file written); the engines kept and the refusals."""
    from gantool.benchmarks.quality.judge import judge_file
    from gantool.trt_engine import import_tensorrt, machine_facts, tensorrt_major

    trt = import_tensorrt()
    major = tensorrt_major(trt)
    source_precision(major)  # refuses an unsupported major before anything is built
    facts = machine_facts(trt)
    cache = _read_timing_cache(request.timing_cache)
    engines: list[EngineResult] = []
    refused: list[str] = []
    for checkpoint, int8_file in pairs:
        if not int8_file.path.is_file():
            continue  # the INT8 file was refused: nothing to build from
        spec = read_spec(checkpoint)
        engine = engine_path_for(checkpoint, out_dir, "int8")
        job = _Job(spec, _profile(spec, request), engine, checkpoint, onnx=int8_file.path, onnx_precision="int8")
        log(f"building {engine.name} from {int8_file.path.name} (TensorRT {trt.__version__}, INT8 from its Q/DQ)")
        plan = build_plan(
            trt, int8_file.path.read_bytes(), "int8", job.profile, request.settings,
            where=int8_file.path.name, timing_cache=cache,
        )  # fmt: skip
        if cache is not None and plan.timing_cache is not None:
            cache = TimingCache(cache.path, plan.timing_cache)
        diff, reference = _parity(job, plan.plan)
        if not math.isfinite(diff):
            raise GantoolError(f"{engine.name} returned NaN or infinite values on the parity inputs; no engine written")
        log(f"{engine.name}: built in {plan.seconds:.1f} s, max abs diff vs {reference} {diff:.1e} (informative)")
        staging = Staging(engine)
        try:
            staged = dataclasses.replace(job, engine=staging.file)
            result = _write(staged, plan, diff, reference, facts, major, request, math.inf)
            verdict = judge_file(
                checkpoint, staging.file, "tensorrt", n=settings.verdict_n, seed=settings.seed, label=str(engine),
                echo=log,
            )  # fmt: skip
            verdict["forced"] = not verdict["passed"] and settings.force
            _store_verdict(sidecar_path(staging.file), verdict)
            if verdict["passed"] or verdict["forced"]:
                os.replace(sidecar_path(staging.file), sidecar_path(engine))
                staging.commit()
                engines.append(dataclasses.replace(result, path=engine, precision="int8"))
                log(f"{engine.name}: {'written, FORCED past a measurable loss' if verdict['forced'] else 'written'}")
            else:
                refused.append(f"{engine.name}: {verdict['verdict']}")
                log(f"{engine.name}: refused, not written ({verdict['verdict']}); --force-int8 writes it anyway")
        finally:
            staging.close()
    if cache is not None:
        atomic_write_bytes(cache.path, cache.data)
    return engines, refused


def _store_verdict(sidecar: Path, verdict: dict[str, object]) -> None:
    """The verdict joins the sidecar's ``extra`` (which ``auto`` reads before it may pick the engine)."""
    info = EngineInfo.from_json(sidecar.read_text(), where=sidecar)
    stamped = dataclasses.replace(info, extra={**info.extra, "quality": verdict})
    sidecar.write_text(stamped.to_json())
