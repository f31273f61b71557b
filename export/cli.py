"""``gantool export``: a checkpoint becomes FP32 and FP16 ONNX files, each parity-checked.

Only typer, the standard library and the light core are imported here; torch
and onnx load inside the command, so ``gantool --help`` stays fast.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated

import typer

from gantool.artifacts import resolve_checkpoint, run_checkpoints
from gantool.errors import BackendUnavailable, GantoolError

TRT_INSTALL_HINT = 'pip install "gantool[trt]" on a machine with an NVIDIA GPU'


def export(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|CHECKPOINT",
            help="Run dir (every generator in it: both directions of a CycleGAN run) or one .safetensors checkpoint.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Folder for the ONNX files (default: beside the checkpoint).", show_default=False
        ),
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset to target (17 or newer).")] = 18,  # = onnx_export.DEFAULT_OPSET
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing ONNX files.")] = False,
    trt: Annotated[
        bool, typer.Option("--trt", help="Also build a TensorRT engine (needs TensorRT and an NVIDIA GPU).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as a JSON list.")] = False,
) -> None:
    """Export generators to FP32 and FP16 ONNX, each checked against PyTorch.

    Writes <stem>.onnx (FP32) and <stem>.fp16.onnx (FP16 weights and compute,
    float32 input and output) beside each checkpoint, or in --out: a GAN run
    gives generator.onnx and generator.fp16.onnx, a CycleGAN run
    generator_a2b.onnx, generator_a2b.fp16.onnx, generator_b2a.onnx and
    generator_b2a.fp16.onnx. A GAN file maps latents z [batch, Z] to images; a
    translator file maps images [batch, C, height, width] to translated images
    of the same shape, for any sides that are multiples of 4 (at least 8).
    Each file passes onnx.checker and is run with onnxruntime against PyTorch
    on the same inputs at two batch sizes (and, for a translator, two image
    sizes): if the max abs difference exceeds 1e-4 (FP32) or 1e-2 (FP16) the
    export fails and leaves nothing behind.
    """
    if trt:  # before anything is loaded or written
        _refuse_trt()
    from gantool.export.onnx_export import check_opset, export_checkpoints

    check_opset(opset)
    checkpoints = _checkpoints(model)
    out_dir = out if out is not None else checkpoints[0].parent
    results = export_checkpoints(checkpoints, out_dir, opset=opset, force=force, log=_progress)
    if json_output:
        rows = [
            {
                "path": str(r.path),
                "precision": r.precision,
                "max_abs_diff": r.max_abs_diff,
                "tolerance": r.tolerance,
                "ok": r.ok,
            }
            for r in results
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = [("file", "precision", "max abs diff", "tolerance", "status")] + [
        (str(r.path), r.precision, f"{r.max_abs_diff:.1e}", f"{r.tolerance:.0e}", "ok" if r.ok else "FAIL")
        for r in results
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _checkpoints(model: Path) -> list[Path]:
    """Every generator checkpoint of a run dir, or the one checkpoint given; ArtifactError says what is missing."""
    if model.is_dir():
        found = run_checkpoints(model)
        if found:
            return found
    return [resolve_checkpoint(model)]  # a checkpoint path, or the clear error for a dir without one


def _refuse_trt() -> None:
    """--trt: say plainly what is missing instead of failing after the ONNX files are written."""
    if importlib.util.find_spec("tensorrt") is None:
        raise BackendUnavailable(f"--trt needs TensorRT, which is not installed: {TRT_INSTALL_HINT}")
    raise GantoolError("--trt: building TensorRT engines is not in this version of gantool yet (export without --trt)")


def _progress(message: str) -> None:
    typer.echo(message, err=True)
