"""``gantool export``: a checkpoint becomes FP32 and FP16 ONNX files, each parity-checked; ``--trt`` adds engines.

Only typer, the standard library and the light core are imported here; torch,
onnx and TensorRT load inside the command, so ``gantool --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gantool.artifacts import is_onnx, resolve_checkpoint, run_checkpoints
from gantool.engines import DEFAULT_BATCHES, parse_size
from gantool.errors import GantoolError, UsageError
from gantool.export import int8_options as i8
from gantool.export import triton_options as tri
from gantool.export.report import report
from gantool.files import check_output_path

if TYPE_CHECKING:
    from gantool.export.int8 import Int8Result, Int8Settings
    from gantool.export.onnx_export import ExportResult
    from gantool.export.tensorrt_export import EngineResult, TrtRequest

TRT = "TensorRT engine (--trt)"
MAX_WORKSPACE_MB = 1 << 20  # 1 TiB: anything above is a typo


def export(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|CHECKPOINT|ONNX",
            help="Run dir (every generator in it: both directions of a CycleGAN run), one .safetensors checkpoint, "
            "or (with --trt or --triton) an exported .onnx file.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Folder for the files written (default: beside the model).", show_default=False
        ),
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset to target (17 or newer).")] = 18,  # = onnx_export.DEFAULT_OPSET
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing ONNX files, engines, Triton models.")
    ] = False,
    trt: Annotated[
        bool, typer.Option("--trt", help="Also build FP16 TensorRT engines (needs TensorRT and an NVIDIA GPU).")
    ] = False,
    min_batch: Annotated[
        int | None, typer.Option(help="With --trt: smallest batch the engine takes (default 1).")
    ] = None,
    opt_batch: Annotated[int | None, typer.Option(help="With --trt: batch TensorRT tunes for (default 8).")] = None,
    max_batch: Annotated[
        int | None, typer.Option(help="With --trt: largest batch the engine takes (default 64).")
    ] = None,
    min_size: Annotated[
        str | None, typer.Option(help="With --trt, translators: smallest image, N or HxW (default --opt-size).")
    ] = None,
    opt_size: Annotated[
        str | None, typer.Option(help="With --trt, translators: image size tuned for (default: the model's).")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option(help="With --trt, translators: largest image, N or HxW (default --opt-size).")
    ] = None,
    workspace_mb: Annotated[
        int | None, typer.Option(help="With --trt: builder workspace limit in MiB (default: TensorRT's).")
    ] = None,
    opt_level: Annotated[
        int | None, typer.Option(help="With --trt: builder optimization level 0-5, higher builds slower (default 3).")
    ] = None,
    timing_cache: Annotated[
        Path | None,
        typer.Option(help="With --trt: TensorRT timing cache file, read if it exists and updated after the build."),
    ] = None,
    quality_check: Annotated[
        int | None,
        typer.Option(
            "--quality-check",
            min=2,
            metavar="N",
            help="Then compare N samples (translators: the test split) of each new file with PyTorch FP32, as "
            "gantool eval --backends does; fail the export, removing the new files, if one is measurably worse.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as a JSON list.")] = False,
    int8: i8.Int8Option = False,
    calib: i8.CalibOption = None,
    calib_data: i8.CalibDataOption = None,
    int8_exclude: i8.Int8ExcludeOption = None,
    int8_report: i8.Int8ReportOption = False,
    force_int8: i8.ForceInt8Option = False,
    triton: tri.TritonOption = None,
    triton_precision: tri.TritonPrecisionOption = None,
    triton_max_batch: tri.TritonMaxBatchOption = None,
    triton_preferred_batch: tri.TritonPreferredOption = None,
    triton_queue_delay_us: tri.TritonQueueDelayOption = None,
    triton_instances: tri.TritonInstancesOption = None,
    triton_device: tri.TritonDeviceOption = None,
    triton_ort_trt: tri.TritonOrtTrtOption = False,
    triton_prefix: tri.TritonPrefixOption = None,
) -> None:
    """Export generators to FP32 and FP16 ONNX, each checked against PyTorch; --trt builds FP16 TensorRT engines.

    Writes <stem>.onnx (FP32) and <stem>.fp16.onnx (FP16 weights and compute,
    float32 input and output) beside each checkpoint, or in --out: a GAN run
    gives generator.onnx and generator.fp16.onnx, a CycleGAN run
    generator_a2b.onnx, generator_a2b.fp16.onnx, generator_b2a.onnx and
    generator_b2a.fp16.onnx. A GAN file maps latents z (batch, Z) to images; a
    translator file maps images (batch, C, height, width) to translated images
    of the same shape, for any sides that are multiples of 4 (at least 8).
    Each file passes onnx.checker and is run with onnxruntime against PyTorch
    on the same inputs at two batch sizes (and, for a translator, two image
    sizes): if the max abs difference exceeds 1e-4 (FP32) or 1e-2 (FP16) the
    export fails and leaves nothing behind.

    --trt builds one FP16 engine per generator, <stem>.fp16.engine, with its
    sidecar <stem>.fp16.engine.json (spec, profile, TensorRT/CUDA/GPU it was
    built on, sha256 of the ONNX source): beside the model, or in --out.
    TensorRT 10 builds from the FP32 <stem>.onnx with its FP16 flag (or from a
    given .fp16.onnx, strongly typed); TensorRT 11, which has no FP16 flag,
    builds from <stem>.fp16.onnx. Existing ONNX files are reused unless older
    than the checkpoint; missing ones are exported first (and stay, they are
    checked on their own). The engine takes batches --min-batch..--max-batch
    and, for a translator, images --min-size..--max-size (sides multiples of
    4). Each engine is run against PyTorch FP32 (onnxruntime FP32 when only an
    ONNX file is given) and must stay within 1e-2; engines are written only
    when all of them pass. An engine runs only on the GPU model and TensorRT
    version that built it: build it on the machine that will run it.

    --int8 also writes <stem>.int8.onnx: a static INT8 QDQ quantization of
    the FP32 file (convolutions and linear layers; normalisations, Tanh and
    the residual adds stay FP32), calibrated on --calib N training inputs
    (translators: the source domain's training images; a GAN: latents),
    then judged as gantool eval --backends judges, against PyTorch FP32 on
    the same inputs: a measurable loss refuses the file (--force-int8 writes
    it, marked forced). The verdict is stored in the file, where --backend
    auto reads it. Up-to-date FP32 files are reused, missing ones exported.
    With --trt, each INT8 file written also becomes <stem>.int8.engine
    (TensorRT 10: its INT8 and FP16 flags; 11: strongly typed from the Q/DQ),
    judged the same way, its verdict in the sidecar.

    --triton REPO then writes a Triton model repository from the files
    checked above: REPO/<stem>/config.pbtxt and REPO/<stem>/1/model.onnx per
    generator (<stem>_fp16 for the FP16 file, with --triton-precision), and
    with --trt REPO/<stem>_fp16_trt/1/model.plan. Existing models need --force.
    """
    request = _trt_request(
        trt, (min_batch, opt_batch, max_batch), (min_size, opt_size, max_size), workspace_mb, opt_level, timing_cache
    )
    given_onnx = model.is_file() and is_onnx(model)
    int8_settings = i8.int8_settings(
        int8, calib, calib_data, int8_exclude, int8_report, force_int8, quality_check, onnx_source=given_onnx
    )
    if given_onnx and not trt and triton is None:
        raise UsageError(f"{model} is an ONNX file: add --trt to build a TensorRT engine from it, or --triton REPO")
    settings = tri.triton_settings(
        triton, triton_precision, triton_max_batch, triton_preferred_batch, triton_queue_delay_us, triton_instances,
        triton_device, triton_ort_trt, triton_prefix,
        onnx_source=given_onnx, engine_max_batch=request.batches[2] if request else None,
    )  # fmt: skip
    from gantool.export.onnx_export import check_opset, export_checkpoints

    check_opset(opset)
    onnx_source = model if given_onnx else None
    checkpoints = [] if onnx_source is not None else _checkpoints(model)
    out_dir = out if out is not None else (onnx_source or checkpoints[0]).parent
    if quality_check is not None:
        _check_quality_checkable(onnx_source, checkpoints, out_dir)
    if int8_settings is not None:
        _check_int8(checkpoints, out_dir, int8_settings, force)
    engines: list[EngineResult] = []
    jobs = []
    if request is not None:
        from gantool.export.tensorrt_export import build_engines, plan_engines

        jobs = plan_engines(checkpoints, onnx_source, out_dir, request, force)  # refusals before TensorRT loads
        if int8_settings is not None:
            from gantool.export.tensorrt_int8 import plan_int8_engines

            plan_int8_engines(checkpoints, out_dir, force)
    repo = tri.plan_triton(
        settings, triton_precision, checkpoints, onnx_source, out_dir, [j.engine for j in jobs], force
    )
    if request is not None:
        results, engines = build_engines(jobs, out_dir, request, opset=opset, force=force, log=_progress)
    else:  # from a given .onnx with --triton alone nothing is exported
        to_export = checkpoints if int8_settings is None else _needing_export(checkpoints, out_dir, force)
        results = export_checkpoints(to_export, out_dir, opset=opset, force=force, log=_progress) if to_export else []
    int8_results: list[Int8Result] = []
    refused: list[str] = []
    if int8_settings is not None:
        from gantool.export.int8_export import export_int8

        int8_results, refused = export_int8(checkpoints, out_dir, int8_settings, log=_progress)
        if request is not None:
            from gantool.export.tensorrt_int8 import build_int8_engines

            pairs = list(zip(checkpoints, int8_results, strict=True))
            int8_engines, refused_engines = build_int8_engines(pairs, out_dir, request, int8_settings, log=_progress)
            engines += int8_engines
            refused += refused_engines
    models = repo.write(force, _progress) if repo is not None else []  # once every file passed its check
    report(results, engines, trt, json_output, tri.triton_rows(models), int8_results)
    if refused:
        raise GantoolError(
            f"INT8 refused (measurable quality loss; --force-int8 writes it anyway): {'; '.join(refused)}"
        )
    if quality_check is not None:
        _quality_check(model, quality_check, results, engines, [m.path for m in models])


def _check_int8(checkpoints: list[Path], out_dir: Path, settings: Int8Settings, force: bool) -> None:
    """Before anything is written: the INT8 files may be written, and the calibration data fits the models."""
    from gantool.artifacts import onnx_path_for
    from gantool.checkpoint import read_spec
    from gantool.export.calibration import check_calibration_data

    for checkpoint in checkpoints:
        check_output_path(onnx_path_for(checkpoint, out_dir, "int8"), force, "INT8 ONNX file")
    check_calibration_data(settings.calib_data, [read_spec(checkpoint) for checkpoint in checkpoints])


def _needing_export(checkpoints: list[Path], out_dir: Path, force: bool) -> list[Path]:
    """With --int8: the checkpoints whose FP32 ONNX must be exported (missing, or --force); a stale one is refused."""
    from gantool.artifacts import onnx_path_for

    needed = []
    for checkpoint in checkpoints:
        fp32 = onnx_path_for(checkpoint, out_dir, "fp32")
        if force or not fp32.exists():
            needed.append(checkpoint)
        elif fp32.stat().st_mtime < checkpoint.stat().st_mtime:
            raise UsageError(f"{fp32} is older than {checkpoint.name}: pass --force to export it again")
    return needed


def _check_quality_checkable(onnx_source: Path | None, checkpoints: list[Path], out_dir: Path) -> None:
    """--quality-check reads the new files the way gantool eval does, beside their checkpoints: refuse otherwise."""
    if onnx_source is not None:
        raise UsageError("--quality-check needs the checkpoint to compare with: export from a run dir or checkpoint")
    if any(checkpoint.parent.resolve() != out_dir.resolve() for checkpoint in checkpoints):
        raise UsageError("--quality-check reads the new files beside their checkpoints: leave out --out")


def _quality_check(
    model: Path, n: int, results: list[ExportResult], engines: list[EngineResult], repo_models: list[Path]
) -> None:
    """Run the check on the files just written; on a measurable loss remove them (and their Triton models) and fail."""
    import shutil

    from gantool.benchmarks.quality.check import quality_check
    from gantool.engines import sidecar_path

    failures = quality_check(model, n, engines=bool(engines), echo=_progress)
    if not failures:
        _progress("quality check: no measurable loss in any exported file")
        return
    written = [result.path for result in results] + [path for e in engines for path in (e.path, sidecar_path(e.path))]
    for path in written:
        path.unlink(missing_ok=True)
    for folder in repo_models:
        shutil.rmtree(folder, ignore_errors=True)
    raise GantoolError(f"quality check failed, removed the {len(written)} new files: {'; '.join(failures)}")


def _trt_request(
    trt: bool,
    batches: tuple[int | None, int | None, int | None],
    sizes: tuple[str | None, str | None, str | None],
    workspace_mb: int | None,
    opt_level: int | None,
    timing_cache: Path | None,
) -> TrtRequest | None:
    """The TrtRequest the flags ask for (None without --trt); UsageError for a flag out of place or out of range."""
    flags = {
        "--min-batch": batches[0], "--opt-batch": batches[1], "--max-batch": batches[2],
        "--min-size": sizes[0], "--opt-size": sizes[1], "--max-size": sizes[2],
        "--workspace-mb": workspace_mb, "--opt-level": opt_level, "--timing-cache": timing_cache,
    }  # fmt: skip
    given = [name for name, value in flags.items() if value is not None]
    if not trt:
        if given:
            verb = "apply" if len(given) > 1 else "applies"
            raise UsageError(f"{', '.join(given)} only {verb} with --trt (TensorRT engines)")
        return None
    from gantool.export.tensorrt_build import DEFAULT_OPT_LEVEL, MAX_OPT_LEVEL, BuildSettings
    from gantool.export.tensorrt_export import TrtRequest

    if opt_level is not None and not 0 <= opt_level <= MAX_OPT_LEVEL:
        raise UsageError(f"--opt-level must be in [0, {MAX_OPT_LEVEL}], got {opt_level}")
    if workspace_mb is not None and not 1 <= workspace_mb <= MAX_WORKSPACE_MB:
        raise UsageError(f"--workspace-mb must be in [1, {MAX_WORKSPACE_MB}], got {workspace_mb}")
    if timing_cache is not None:
        if timing_cache.is_dir():
            raise UsageError(f"--timing-cache {timing_cache} is a directory: pass a file")
        check_output_path(timing_cache, True, "timing cache")
    return TrtRequest(
        batches=batch_profile(*batches),
        sizes=(
            parse_size(sizes[0]) if sizes[0] else None,
            parse_size(sizes[1]) if sizes[1] else None,
            parse_size(sizes[2]) if sizes[2] else None,
        ),
        settings=BuildSettings(
            workspace_mb=workspace_mb, opt_level=DEFAULT_OPT_LEVEL if opt_level is None else opt_level
        ),
        timing_cache=timing_cache,
    )


def batch_profile(low: int | None, opt: int | None, high: int | None) -> tuple[int, int, int]:
    """min/opt/max batch from the flags given; defaults (1, 8, 64) give way to them, so ``--max-batch 4`` alone works.

    Values given explicitly are kept as they are: ``profile_for`` refuses an impossible combination.
    """
    default_low, default_opt, default_high = DEFAULT_BATCHES
    low = default_low if low is None else low
    high = max(default_high, low, opt or 0) if high is None else high
    opt = min(max(default_opt, low), high) if opt is None else opt
    return low, opt, high


def _checkpoints(model: Path) -> list[Path]:
    """Every generator checkpoint of a run dir, or the one checkpoint given; ArtifactError says what is missing."""
    if model.is_dir():
        found = run_checkpoints(model)
        if found:
            return found
    return [resolve_checkpoint(model)]  # a checkpoint path, or the clear error for a dir without one


def _progress(message: str) -> None:
    typer.echo(message, err=True)
