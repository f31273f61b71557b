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

from gantool.artifacts import resolve_checkpoint
from gantool.errors import BackendUnavailable, GantoolError

TRT_INSTALL_HINT = 'pip install "gantool[trt]" on a machine with an NVIDIA GPU'


def export(
    model: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|CHECKPOINT", help="Run dir or .safetensors checkpoint to export.", show_default=False
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
    """Export a generator to FP32 and FP16 ONNX, each checked against PyTorch.

    Writes <stem>.onnx (FP32) and <stem>.fp16.onnx (FP16 weights and compute,
    float32 input and output) beside the checkpoint, or in --out. Each file
    passes onnx.checker and is run with onnxruntime against PyTorch on the same
    latents at batch 1 and 16: if the max abs difference exceeds 1e-4 (FP32)
    or 1e-2 (FP16) the export fails and leaves nothing behind.
    """
    if trt:  # before anything is loaded or written
        _refuse_trt()
    from gantool.export.onnx_export import check_opset, export_checkpoint

    check_opset(opset)
    checkpoint = resolve_checkpoint(model)
    out_dir = out if out is not None else checkpoint.parent
    results = export_checkpoint(checkpoint, out_dir, opset=opset, force=force, log=_progress)
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


def _refuse_trt() -> None:
    """--trt: say plainly what is missing instead of failing after the ONNX files are written."""
    if importlib.util.find_spec("tensorrt") is None:
        raise BackendUnavailable(f"--trt needs TensorRT, which is not installed: {TRT_INSTALL_HINT}")
    raise GantoolError("--trt: building TensorRT engines is not in this version of gantool yet (export without --trt)")


def _progress(message: str) -> None:
    typer.echo(message, err=True)
