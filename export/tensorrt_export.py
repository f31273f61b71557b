"""``gantool export --trt``: FP16 TensorRT engines, each run against PyTorch before it is written.

Steps, and the order matters (each refusal happens before anything is written):

1. **Plan** from files alone: the generators (a run dir's one or two, a
   checkpoint, or an exported ``.onnx``), their specs, the optimization
   profile each gets from the flags, the output paths (``--force``), stale ONNX.
2. **TensorRT**: imported, its major picks the ONNX source (10: the FP32 file
   with the FP16 builder flag, or an FP16 file strongly typed; 11: only the
   FP16 file), and the GPU's facts are read for the sidecar.
3. **ONNX**: exported (parity-checked as always) where the files are missing,
   or everything again with ``--force``; fresh files are reused.
4. **Build and check** every engine: run on inputs inside its profile (min
   batch, opt batch up to 8; a translator also at its min and max sizes) and
   compared with PyTorch FP32 on the checkpoint (or onnxruntime on the FP32
   ONNX when only an ONNX file is at hand); above the FP16 tolerance, stop.
5. **Write**, only once every engine passed: each plan then its sidecar
   (atomically, the sidecar last), then the merged ``--timing-cache``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gantool.artifacts import CHECKPOINT_SUFFIX, FP16_ONNX_SUFFIX, ONNX_SUFFIX, engine_path_for, is_onnx, onnx_path_for
from gantool.checkpoint import read_spec
from gantool.engines import EngineInfo, MachineFacts, Profile, Size, profile_for, sidecar_path
from gantool.errors import ArtifactError, GantoolError, UsageError
from gantool.export.interface import PARITY_SEED, interface_for, translator_images
from gantool.export.tensorrt_build import BuildSettings, BuiltPlan, TimingCache, build_plan, source_precision
from gantool.files import atomic_write_bytes, check_output_path, sha256_file
from gantool.latents import latent_batch
from gantool.spec import ModelSpec

if TYPE_CHECKING:
    from gantool.export.onnx_export import ExportResult

PARITY_MAX_BATCH = 8  # the opt batch is checked up to this many images: enough to prove the batch axis
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrtRequest:
    """What the flags ask for: the profile's batches and sizes, the builder settings, a timing cache file."""

    batches: tuple[int, int, int]
    sizes: tuple[Size | None, Size | None, Size | None]
    settings: BuildSettings
    timing_cache: Path | None = None


@dataclass(frozen=True)
class EngineResult:
    """One written engine and how close it came to the reference."""

    path: Path
    max_abs_diff: float
    tolerance: float
    build_seconds: float
    precision: str = "fp16"

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


@dataclass
class _Job:
    """One generator's engine: where it comes from, what it takes, where it goes."""

    spec: ModelSpec
    profile: Profile
    engine: Path
    checkpoint: Path | None  # the PyTorch reference, when there is one
    onnx: Path | None = None  # an ONNX file given by the user (else chosen from the checkpoint's exports)
    onnx_precision: str = "fp32"
    export: bool = False  # export the checkpoint's ONNX files first


def plan_engines(
    checkpoints: Sequence[Path], onnx: Path | None, out_dir: Path, request: TrtRequest, force: bool
) -> list[_Job]:
    """Step 1: everything that can be refused from files and flags, before TensorRT is even imported."""
    jobs = [_onnx_job(onnx, out_dir, request)] if onnx is not None else []
    for checkpoint in checkpoints:
        spec = read_spec(checkpoint)
        jobs.append(_Job(spec, _profile(spec, request), engine_path_for(checkpoint, out_dir), checkpoint))
    for job in jobs:
        check_output_path(job.engine, force, "TensorRT engine")
        check_output_path(sidecar_path(job.engine), force, "engine sidecar")
    return jobs


def build_engines(
    jobs: list[_Job], out_dir: Path, request: TrtRequest, *, opset: int, force: bool, log: Log
) -> tuple[list[ExportResult], list[EngineResult]]:
    """Steps 2–5; returns the ONNX files exported on the way (ExportResult) and the engines written."""
    from gantool.export.onnx_export import TOLERANCES, export_checkpoints
    from gantool.trt_engine import import_tensorrt, machine_facts, tensorrt_major

    trt = import_tensorrt()
    major = tensorrt_major(trt)
    source = source_precision(major)
    for job in jobs:
        _choose_source(job, major, source, out_dir, force)
    facts = machine_facts(trt)
    cache = _read_timing_cache(request.timing_cache)
    to_export = [job.checkpoint for job in jobs if job.export and job.checkpoint is not None]
    exported = export_checkpoints(to_export, out_dir, opset=opset, force=force, log=log) if to_export else []
    tolerance = TOLERANCES["fp16"]
    built: list[tuple[_Job, BuiltPlan, float, str]] = []
    for job in jobs:
        assert job.onnx is not None  # _choose_source picked it
        log(f"building {job.engine.name} from {job.onnx.name} (TensorRT {trt.__version__})")
        plan = build_plan(
            trt, job.onnx.read_bytes(), job.onnx_precision, job.profile, request.settings,
            where=job.onnx.name, timing_cache=cache,
        )  # fmt: skip
        if cache is not None and plan.timing_cache is not None:  # the next build starts from what this one timed
            cache = TimingCache(cache.path, plan.timing_cache)
        diff, reference = _parity(job, plan.plan)
        log(f"{job.engine.name}: built in {plan.seconds:.1f} s, max abs diff vs {reference} {diff:.1e}")
        if not diff <= tolerance:
            raise GantoolError(
                f"{job.engine.name} differs from {reference} by {diff:.2e} (tolerance {tolerance:.0e}); "
                "no engine written"
            )
        built.append((job, plan, diff, reference))
    results = [_write(job, plan, diff, ref, facts, major, request, tolerance) for job, plan, diff, ref in built]
    if cache is not None:
        atomic_write_bytes(cache.path, cache.data)
    return exported, results


def _profile(spec: ModelSpec, request: TrtRequest) -> Profile:
    interface = interface_for(spec)
    return profile_for(spec, interface.input_name, interface.output_name, request.batches, request.sizes)


def _onnx_job(path: Path, out_dir: Path, request: TrtRequest) -> _Job:
    """An ONNX file given directly: its spec and precision from its metadata, its checkpoint sibling if any."""
    from gantool.export.interface import read_gantool_onnx
    from gantool.spec import PRECISION_KEY

    _, metadata, spec = read_gantool_onnx(path)
    precision = metadata.get(PRECISION_KEY, "fp16" if path.name.endswith(FP16_ONNX_SUFFIX) else "fp32")
    if precision == "int8":
        raise UsageError(
            f"{path} is an INT8 file: build its engine with 'gantool export RUN --trt --int8', which judges the "
            "engine against the checkpoint"
        )
    if precision not in ("fp32", "fp16"):
        raise ArtifactError(f"{path}: unknown {PRECISION_KEY} {precision!r}")
    stem = path.name.removesuffix(FP16_ONNX_SUFFIX).removesuffix(ONNX_SUFFIX)
    checkpoint: Path | None = path.with_name(stem + CHECKPOINT_SUFFIX)
    if checkpoint is not None and checkpoint.is_file():
        if read_spec(checkpoint) != spec:
            raise ArtifactError(f"{path} and {checkpoint.name} beside it describe different models")
    else:
        checkpoint = None
        if not path.with_name(stem + ONNX_SUFFIX).is_file():  # the reference parity needs
            raise ArtifactError(
                f"cannot check an engine built from {path.name}: neither {stem}{CHECKPOINT_SUFFIX} "
                f"nor {stem}{ONNX_SUFFIX} is beside it"
            )
    engine = engine_path_for(Path(stem + CHECKPOINT_SUFFIX), out_dir)
    return _Job(spec, _profile(spec, request), engine, checkpoint, onnx=path, onnx_precision=precision)


def _choose_source(job: _Job, major: int, source: str, out_dir: Path, force: bool) -> None:
    """Which ONNX file this TensorRT builds from, and whether it must be exported first."""
    if job.onnx is not None:  # given by the user: 10 builds either precision, 11 only FP16
        if major == 11 and job.onnx_precision == "fp32":
            fp16 = job.onnx.with_name(job.onnx.name.removesuffix(ONNX_SUFFIX) + FP16_ONNX_SUFFIX)
            raise UsageError(
                f"TensorRT 11 builds FP16 engines only from the FP16 ONNX file (it has no FP16 flag): "
                f"pass {fp16} instead of {job.onnx}"
            )
        return
    assert job.checkpoint is not None
    job.onnx, job.onnx_precision = onnx_path_for(job.checkpoint, out_dir, source), source
    if force or not job.onnx.exists():
        if not force:  # the export writes both precisions: refuse now if the other one is in the way
            for precision in ("fp32", "fp16"):
                check_output_path(onnx_path_for(job.checkpoint, out_dir, precision), force, "ONNX file")
        job.export = True
    elif job.onnx.stat().st_mtime < job.checkpoint.stat().st_mtime:
        raise UsageError(
            f"{job.onnx} is older than {job.checkpoint.name}: pass --force to export it again and build from it"
        )


def _read_timing_cache(path: Path | None) -> TimingCache | None:
    if path is None:
        return None
    try:
        return TimingCache(path, path.read_bytes() if path.exists() else b"")
    except OSError as exc:
        raise GantoolError(f"cannot read --timing-cache {path}: {exc.strerror or exc}") from None


def parity_inputs(spec: ModelSpec, profile: Profile) -> list[np.ndarray]:
    """Inputs inside the profile: min batch and opt batch (up to 8); a translator's also at min and max size."""
    low = profile.min[0]
    opt = max(low, min(profile.opt[0], PARITY_MAX_BATCH))
    if spec.latent_dim is not None:
        return [latent_batch(PARITY_SEED, 0, n, spec.latent_dim) for n in sorted({low, opt})]
    shapes = {(opt, *profile.opt[1:]), (low, *profile.min[1:]), (low, *profile.max[1:])}
    return [translator_images(spec, shape, PARITY_SEED) for shape in sorted(shapes)]


def _parity(job: _Job, plan: bytes) -> tuple[float, str]:
    """Worst |engine − reference| over the parity inputs (NaN counts as ∞), and what the reference was."""
    from gantool.trt_engine import EngineRunner

    inputs = parity_inputs(job.spec, job.profile)
    references, reference = _references(job, inputs)
    worst = 0.0
    runner = EngineRunner(plan, job.profile, where=job.engine.name, use_graphs=False)  # each shape runs once
    try:
        for batch, want in zip(inputs, references, strict=True):
            got = runner.run(batch)
            if got.shape != want.shape:
                raise GantoolError(
                    f"{job.engine.name} returned shape {got.shape} for input {batch.shape}, not {want.shape}"
                )
            diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            worst = max(worst, diff if np.isfinite(diff) else float("inf"))
    finally:
        runner.close()
    return worst, reference


def _references(job: _Job, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], str]:
    """PyTorch FP32 on the checkpoint; without one, onnxruntime on the FP32 ONNX file beside the given one."""
    if job.checkpoint is not None:
        import torch

        from gantool.checkpoint import load_generator

        module, _ = load_generator(job.checkpoint)
        with torch.inference_mode():
            return [module(torch.from_numpy(x)).numpy() for x in inputs], "PyTorch FP32"
    import onnxruntime as ort

    assert job.onnx is not None
    fp32 = job.onnx.with_name(job.onnx.name.removesuffix(FP16_ONNX_SUFFIX).removesuffix(ONNX_SUFFIX) + ONNX_SUFFIX)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
    name, output = job.profile.input_name, job.profile.output_name
    return [session.run([output], {name: x})[0] for x in inputs], f"onnxruntime FP32 ({fp32.name})"


def _write(
    job: _Job, plan: BuiltPlan, diff: float, reference: str, facts: MachineFacts, major: int, request: TrtRequest,
    tolerance: float,
) -> EngineResult:  # fmt: skip
    """The plan, then its sidecar (a stale sidecar is removed first: never one that describes another plan)."""
    assert job.onnx is not None
    int8 = job.onnx_precision == "int8"
    info = EngineInfo(
        spec=job.spec,
        precision="int8" if int8 else "fp16",
        profile=job.profile,
        built_on=facts,
        source_onnx=job.onnx.name,
        source_sha256=sha256_file(job.onnx),
        engine_sha256=hashlib.sha256(plan.plan).hexdigest(),
        max_abs_diff=diff,
        extra={
            "tensorrt_major": major,
            "strongly_typed": plan.strongly_typed,
            "fp16_builder_flag": not plan.strongly_typed,
            "int8_builder_flag": int8 and not plan.strongly_typed,
            "workspace_mb": request.settings.workspace_mb,
            "opt_level": request.settings.opt_level,
            "timing_cache": request.timing_cache.name if request.timing_cache else None,
            "reference": reference,
            "build_seconds": round(plan.seconds, 2),
        },
    )
    sidecar = sidecar_path(job.engine)
    sidecar.unlink(missing_ok=True)
    atomic_write_bytes(job.engine, plan.plan)
    atomic_write_bytes(sidecar, info.to_json().encode("utf-8"))
    return EngineResult(job.engine, diff, tolerance, plan.seconds)


def is_onnx_source(model: Path) -> bool:
    """``export X.onnx --trt`` builds from that file instead of a checkpoint."""
    return model.is_file() and is_onnx(model)
