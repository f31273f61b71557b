"""Checkpoint → FP32 and FP16 ONNX files, each proven against PyTorch before it appears.

Both files are written to temporary names beside their destinations, checked
(``onnx.checker``, the I/O contract, the FP16 weights, onnxruntime parity at
two batch sizes) and renamed into place only when *both* passed, so a failed
export leaves nothing new behind and an older export survives a failed
``--force``.

Exporter settings, and why: torch's dynamo exporter (``dynamo=True``, the
default; the TorchScript one is deprecated) with ``dynamic_shapes`` naming
axis 0 ``batch`` (``dynamic_axes`` is the legacy exporter's spelling), traced
at batch 2 so the axis cannot be specialised to 1; ``optimize=True`` folds
eval-mode BatchNorm into the convolutions; ``external_data=False`` and we
serialise the proto ourselves, so the file is always one self-contained file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from gantool import __version__
from gantool.artifacts import onnx_path_for
from gantool.checkpoint import load_generator, read_spec
from gantool.errors import GantoolError, UsageError
from gantool.export.fp16 import HalfPrecision, check_fp16_weights
from gantool.export.parity import INPUT_NAME, OUTPUT_NAME, check_io, max_abs_diff
from gantool.files import atomic_path, check_output_path
from gantool.spec import METADATA_KEY, ModelSpec

MIN_OPSET = 17
DEFAULT_OPSET = 18  # torch's exporter emits opset 18 natively; others go through the version converter
TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2}  # max |onnxruntime − PyTorch FP32| allowed per precision
PRECISION_KEY = "gantool.precision"  # metadata beside the spec: which variant this file is
TRACE_BATCH = 2  # example batch for tracing: not 1, which torch.export would treat as a constant


@dataclass(frozen=True)
class ExportResult:
    """One written file and how close it came to PyTorch."""

    path: Path
    precision: str  # "fp32" | "fp16"
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def max_opset() -> int:
    """The newest opset the installed onnx package knows."""
    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= max_opset():
        raise UsageError(f"--opset must be in [{MIN_OPSET}, {max_opset()}] (onnx {onnx.__version__}), got {opset}")


def export_checkpoint(
    checkpoint: Path,
    out_dir: Path,
    *,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[ExportResult]:
    """Export ``checkpoint`` to ``<stem>.onnx`` and ``<stem>.fp16.onnx`` in ``out_dir``; fail if parity fails.

    ``log`` receives one short line per step (the CLI sends them to stderr).
    """
    say = log or (lambda _message: None)
    check_opset(opset)
    paths = {precision: onnx_path_for(checkpoint, out_dir, precision) for precision in TOLERANCES}
    for path in paths.values():
        check_output_path(path, force, "ONNX file")
    spec = read_spec(checkpoint)
    if spec.kind != "gan" or spec.latent_dim is None:
        raise GantoolError(f"{checkpoint}: exporting {spec.kind} ({spec.arch}) models is not supported yet")
    module, spec = load_generator(checkpoint)

    def reference(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(z)).numpy()

    variants: dict[str, nn.Module] = {"fp32": module, "fp16": HalfPrecision(module)}
    results: list[ExportResult] = []
    with contextlib.ExitStack() as stack:
        for precision, path in paths.items():
            tmp = stack.enter_context(atomic_path(path))  # renamed into place when the stack closes cleanly
            say(f"exporting {path.name} ({precision}, opset {opset})")
            model = _export(variants[precision], spec, opset)
            _stamp(model, spec, precision)
            tmp.write_bytes(model.SerializeToString())
            _validate(tmp, model, spec, precision, path.name)
            diff = max_abs_diff(tmp, reference, spec.latent_dim)
            result = ExportResult(path, precision, diff, TOLERANCES[precision])
            say(f"{path.name}: max abs diff vs PyTorch {diff:.1e} (tolerance {result.tolerance:.0e})")
            if not result.ok:
                raise GantoolError(
                    f"{path.name} differs from PyTorch by {diff:.2e} (tolerance {result.tolerance:.0e}); nothing written"
                )
            results.append(result)
    return results


def _export(module: nn.Module, spec: ModelSpec, opset: int) -> onnx.ModelProto:
    """Run torch's exporter quietly; any failure becomes one GantoolError line."""
    assert spec.latent_dim is not None
    example = torch.zeros(TRACE_BATCH, spec.latent_dim)
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet():
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types (torch.export, onnxscript, converter)
        raise GantoolError(f"ONNX export failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if program is None:  # only the legacy exporter returns None
        raise GantoolError("ONNX export failed: the exporter returned no model")
    return program.model_proto


def _stamp(model: onnx.ModelProto, spec: ModelSpec, precision: str) -> None:
    """Make the file self-describing: who made it, and the full spec the runtime rebuilds from."""
    model.producer_name = "gantool"
    model.producer_version = __version__
    low, high = spec.value_range
    model.doc_string = (
        f"gantool {spec.arch} generator ({precision}): {INPUT_NAME} float32 [batch, {spec.latent_dim}] -> "
        f"{OUTPUT_NAME} float32 [batch, {spec.channels}, {spec.height}, {spec.width}] in [{low}, {high}]"
    )
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: spec.to_json(), PRECISION_KEY: precision})


def _validate(path: Path, model: onnx.ModelProto, spec: ModelSpec, precision: str, name: str) -> None:
    """The written file passes onnx.checker, keeps the I/O contract and, for FP16, holds FP16 weights."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GantoolError(f"{name} fails onnx.checker: {_first_line(exc)}") from None
    check_io(model, spec, name)
    if precision == "fp16":
        check_fp16_weights(model, name)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress prints, log lines and warnings for the duration of one export."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
