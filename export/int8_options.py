"""The ``--int8`` options of ``gantool export``, and the checks made on them before anything is exported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gantool.errors import UsageError
from gantool.export.calibration import DEFAULT_CALIB, MIN_CALIB

if TYPE_CHECKING:
    from gantool.export.int8 import Int8Settings

PANEL = "INT8 quantization (--int8)"
DEFAULT_VERDICT_N = 1000  # a GAN's samples in the verdict (a translator's: its test split); --quality-check N sets it

Int8Option = Annotated[
    bool,
    typer.Option(
        "--int8",
        rich_help_panel=PANEL,
        help="Also write <stem>.int8.onnx: INT8 QDQ (Conv/ConvTranspose/Gemm/MatMul), calibrated on training "
        "inputs, kept only if gantool eval's verdict against FP32 finds no measurable loss.",
    ),
]
CalibOption = Annotated[
    int | None,
    typer.Option(
        "--calib", metavar="N", help=f"With --int8: calibration inputs, a seeded subset (default {DEFAULT_CALIB}).",
        show_default=False, rich_help_panel=PANEL,
    ),
]  # fmt: skip
CalibDataOption = Annotated[
    Path | None,
    typer.Option(
        "--calib-data",
        rich_help_panel=PANEL,
        help="With --int8: calibrate on these instead of the training data: a folder of images (or one holding "
        "trainA/ and trainB/) for translators, a .npy/.npz of N×Z latents for a GAN.",
        show_default=False,
    ),
]
Int8ExcludeOption = Annotated[
    str | None,
    typer.Option(
        "--int8-exclude",
        metavar="LAYERS",
        rich_help_panel=PANEL,
        help="With --int8: comma-separated layers kept in FP32: first, last, or node names (--int8-report lists them).",
        show_default=False,
    ),
]
Int8ReportOption = Annotated[
    bool,
    typer.Option(
        "--int8-report",
        rich_help_panel=PANEL,
        help="With --int8: print each layer's quantization SQNR (weights, input, output).",
    ),
]
ForceInt8Option = Annotated[
    bool,
    typer.Option(
        "--force-int8",
        rich_help_panel=PANEL,
        help="With --int8: write the file even when the verdict is a measurable loss (marked forced: auto never picks it).",
    ),
]


def int8_settings(
    int8: bool, calib: int | None, calib_data: Path | None, exclude: str | None, report: bool, force: bool,
    quality_check: int | None, *, onnx_source: bool,
) -> Int8Settings | None:  # fmt: skip
    """The settings --int8 asks for (None without it); UsageError for a flag out of place or out of range."""
    given = {
        "--calib": calib is not None, "--calib-data": calib_data is not None, "--int8-exclude": exclude is not None,
        "--int8-report": report, "--force-int8": force,
    }  # fmt: skip
    if not int8:
        named = [name for name, present in given.items() if present]
        if named:
            verb = "apply" if len(named) > 1 else "applies"
            raise UsageError(f"{', '.join(named)} only {verb} with --int8")
        return None
    if onnx_source:
        raise UsageError(
            "--int8 quantizes from the checkpoint and judges against it: export from a run dir or checkpoint"
        )
    if calib is not None and calib < MIN_CALIB:
        raise UsageError(f"--calib must be at least {MIN_CALIB}, got {calib}")
    layers = tuple(part.strip() for part in (exclude or "").split(",") if part.strip())
    if exclude is not None and not layers:
        raise UsageError("--int8-exclude takes first, last or layer names, comma-separated")
    from gantool.export.int8 import Int8Settings

    return Int8Settings(
        calib=DEFAULT_CALIB if calib is None else calib, calib_data=calib_data, exclude=layers,
        verdict_n=DEFAULT_VERDICT_N if quality_check is None else quality_check, force=force, report=report,
    )  # fmt: skip
