"""``gantool export --triton REPO`` and its options: spelled once here, so export/cli.py stays readable.

Only typer and the light core load at import time (``gantool --help`` stays
fast); the writer, export/triton_repo.py, loads inside the command. Every
option is refused without ``--triton`` rather than ignored, and every value is
checked before any export work starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gantool.artifacts import onnx_path_for
from gantool.engines import DEFAULT_BATCHES, MAX_BATCH
from gantool.errors import UsageError

if TYPE_CHECKING:
    from gantool.export.triton_config import TritonSettings
    from gantool.export.triton_repo import RepoEntry, TritonModel

PANEL = "Triton model repository (--triton)"
MAX_INSTANCES = 64
MAX_QUEUE_DELAY_US = 10_000_000  # 10 s: anything above is a typo


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    both = "both"


class Device(str, Enum):
    auto = "auto"
    gpu = "gpu"
    cpu = "cpu"


TritonOption = Annotated[
    Path | None,
    typer.Option(
        "--triton", metavar="REPO", rich_help_panel=PANEL, show_default=False,
        help="Also write a Triton model repository: REPO/<stem>/config.pbtxt + 1/model.onnx per generator; with "
        "--trt also REPO/<stem>_fp16_trt (1/model.plan).",
    ),
]  # fmt: skip
TritonPrecisionOption = Annotated[
    Precision | None,
    typer.Option(
        rich_help_panel=PANEL, show_default=False,
        help="Which ONNX files the repository serves: fp32 (default: exact; add --triton-ort-trt for FP16 speed on "
        "GPUs), fp16 (<stem>_fp16), or both.",
    ),
]  # fmt: skip
TritonMaxBatchOption = Annotated[
    int | None,
    typer.Option(
        min=1, max=MAX_BATCH, rich_help_panel=PANEL, show_default=False,
        help="max_batch_size of the ONNX models (default: --max-batch with --trt, else 64); a plan takes at most "
        "its engine's max batch.",
    ),
]  # fmt: skip
TritonPreferredOption = Annotated[
    str | None,
    typer.Option(
        metavar="N,N...", rich_help_panel=PANEL, show_default=False,
        help="Dynamic batching's preferred batch sizes, at most the max batch (default: 8,32 up to it).",
    ),
]  # fmt: skip
TritonQueueDelayOption = Annotated[
    int | None,
    typer.Option(
        min=0, max=MAX_QUEUE_DELAY_US, rich_help_panel=PANEL, show_default=False,
        help="Longest a request waits for others to batch with, in microseconds (default 500).",
    ),
]  # fmt: skip
TritonInstancesOption = Annotated[
    int | None,
    typer.Option(
        min=1, max=MAX_INSTANCES, rich_help_panel=PANEL, show_default=False,
        help="Model instances per device (instance_group count, default 1).",
    ),
]  # fmt: skip
TritonDeviceOption = Annotated[
    Device | None,
    typer.Option(
        rich_help_panel=PANEL, show_default=False,
        help="Where the ONNX models run: auto (default: GPUs if the server has any, else CPU), gpu or cpu. "
        "Plans always run on GPUs.",
    ),
]  # fmt: skip
TritonOrtTrtOption = Annotated[
    bool,
    typer.Option(
        "--triton-ort-trt", rich_help_panel=PANEL,
        help="Run the ONNX models through onnxruntime's TensorRT accelerator at FP16 on GPUs (engines built on "
        "first use per shape, cached in the server's /tmp).",
    ),
]  # fmt: skip
TritonPrefixOption = Annotated[
    str | None,
    typer.Option(
        metavar="PREFIX", rich_help_panel=PANEL, show_default=False,
        help="Prefix for the model names, so several runs share one repository (digits_ gives digits_generator).",
    ),
]  # fmt: skip


def triton_settings(
    repo: Path | None, precision: Precision | None, max_batch: int | None, preferred: str | None,
    queue_delay_us: int | None, instances: int | None, device: Device | None, ort_trt: bool, prefix: str | None,
    *, onnx_source: bool, engine_max_batch: int | None,
) -> TritonSettings | None:  # fmt: skip
    """The settings the flags ask for (None without --triton); UsageError for a flag out of place or out of range."""
    flags = {
        "--triton-precision": precision, "--triton-max-batch": max_batch, "--triton-preferred-batch": preferred,
        "--triton-queue-delay-us": queue_delay_us, "--triton-instances": instances, "--triton-device": device,
        "--triton-ort-trt": ort_trt or None, "--triton-prefix": prefix,
    }  # fmt: skip
    if repo is None:
        given = [name for name, value in flags.items() if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only {'apply' if len(given) > 1 else 'applies'} with --triton REPO")
        return None
    from gantool.export.triton_config import DEFAULT_QUEUE_DELAY_US, TritonSettings

    if onnx_source and precision is not None:
        raise UsageError("--triton-precision picks among a checkpoint's exports: from an .onnx file REPO serves it")
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", prefix):
        raise UsageError(f"--triton-prefix {prefix!r} must be letters, digits, '_' or '-'")
    if ort_trt and device == Device.cpu:
        raise UsageError("--triton-ort-trt runs on GPUs: leave out --triton-device cpu")
    if engine_max_batch is not None and max_batch is not None and max_batch > engine_max_batch:
        raise UsageError(
            f"--triton-max-batch {max_batch} exceeds the engine's --max-batch {engine_max_batch}: raise --max-batch"
        )
    resolved = max_batch or engine_max_batch or DEFAULT_BATCHES[2]
    return TritonSettings(
        repo=repo,
        max_batch=resolved,
        preferred=None if preferred is None else _preferred(preferred, resolved),
        queue_delay_us=DEFAULT_QUEUE_DELAY_US if queue_delay_us is None else queue_delay_us,
        instances=instances or 1,
        device=(device or Device.auto).value,
        ort_trt=ort_trt,
        prefix=prefix or "",
    )


def _preferred(text: str, max_batch: int) -> tuple[int, ...]:
    """``8,32`` → (8, 32): sizes from 1 to the max batch, sorted, each once."""
    try:
        sizes = sorted({int(part) for part in text.replace(" ", "").split(",")})
    except ValueError:
        raise UsageError(f"--triton-preferred-batch {text!r} is not a comma-separated list of batch sizes") from None
    if not sizes or sizes[0] < 1 or sizes[-1] > max_batch:
        raise UsageError(f"--triton-preferred-batch sizes must be in [1, {max_batch}] (the max batch), got {text}")
    return tuple(sizes)


@dataclass(frozen=True)
class TritonPlan:
    """The repository to write once the export's files passed their checks."""

    settings: TritonSettings
    entries: list[RepoEntry]

    def write(self, force: bool, log: Callable[[str], None]) -> list[TritonModel]:
        from gantool.export.triton_repo import write_repository

        models = write_repository(self.settings.repo, self.entries, self.settings, force)
        log(f"Triton model repository {self.settings.repo}: {', '.join(model.path.name for model in models)}")
        return models


def plan_triton(
    settings: TritonSettings | None, precision: Precision | None, checkpoints: list[Path], onnx_source: Path | None,
    out_dir: Path, engines: list[Path], force: bool,
) -> TritonPlan | None:  # fmt: skip
    """The entries (each checkpoint's chosen ONNX files, or the given .onnx, then the engines), refused now if in
    the way; None without --triton."""
    if settings is None:
        return None
    from gantool.export.triton_repo import plan_repository

    chosen = {None: ["fp32"], Precision.fp32: ["fp32"], Precision.fp16: ["fp16"], Precision.both: ["fp32", "fp16"]}
    if onnx_source is not None:
        onnx_files = [onnx_source]
    else:
        onnx_files = [onnx_path_for(ckpt, out_dir, p) for ckpt in checkpoints for p in chosen[precision]]
    return TritonPlan(settings, plan_repository(settings.repo, onnx_files, engines, settings.prefix, force))


def triton_rows(models: list[TritonModel]) -> list[dict[str, Any]]:
    """Report rows for the models written, in the export table's columns (no parity of their own: their files')."""
    return [
        {"path": str(m.path), "precision": m.precision, "max_abs_diff": None, "tolerance": None, "ok": True,
         "triton_model": m.path.name, "platform": m.platform, "max_batch_size": m.max_batch_size,
         "source": str(m.source)}
        for m in models
    ]  # fmt: skip
