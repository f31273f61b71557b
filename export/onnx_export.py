"""Checkpoints → FP32 and FP16 ONNX files, each proven against PyTorch before it appears.

Every file is written to a temporary name beside its destination, checked
(``onnx.checker``, the I/O contract, the FP16 weights, onnxruntime parity on
the interface's inputs) and renamed into place only when *every* file of the
export passed — both precisions of every checkpoint, so a CycleGAN run's two
directions appear together or not at all, a failed export leaves nothing new
behind and an older export survives a failed ``--force``.

Exporter settings, and why: torch's dynamo exporter (``dynamo=True``, the
default; the TorchScript one is deprecated) with ``dynamic_shapes``
(``dynamic_axes`` is the legacy exporter's spelling): the batch is
``Dim("batch")``, a translator's sides are ``4 * Dim(...)`` so torch.export
knows they are multiples of 4; traced at batch 2 so the batch cannot be
specialised to 1. The exporter names a side after its expression (``4*h4``);
we rename it to ``height`` / ``width`` in the file. ``optimize=True`` folds
eval-mode BatchNorm into the convolutions; ``external_data=False`` and we
serialise the proto ourselves, so the file is always one self-contained file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from gantool import __version__
from gantool.artifacts import DIRECTIONS, GENERATOR_STEM, checkpoint_in, onnx_path_for
from gantool.checkpoint import load_generator, read_spec
from gantool.errors import GantoolError, UsageError
from gantool.export.fp16 import HalfPrecision, check_fp16_weights
from gantool.export.interface import BATCH, MIN_SIDE, SIZE_MULTIPLE, GraphInterface, interface_for
from gantool.export.parity import check_io, max_abs_diff
from gantool.files import atomic_path, check_output_path
from gantool.spec import METADATA_KEY, PRECISION_KEY, ModelSpec

MIN_OPSET = 17
DEFAULT_OPSET = 18  # torch's exporter emits opset 18 natively; others go through the version converter
TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2}  # max |onnxruntime − PyTorch FP32| allowed per precision


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
    """Export ``checkpoint`` to ``<stem>.onnx`` and ``<stem>.fp16.onnx`` in ``out_dir``; fail if parity fails."""
    return export_checkpoints([checkpoint], out_dir, opset=opset, force=force, log=log)


def export_checkpoints(
    checkpoints: Sequence[Path],
    out_dir: Path,
    *,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[ExportResult]:
    """Export every checkpoint (a GAN's one, a CycleGAN run's two) to FP32 and FP16 ONNX, all or nothing.

    All output paths are checked against ``--force`` and every checkpoint's
    spec against its name and the exportable kinds before anything is loaded;
    the files are renamed into place only once every one passed.
    ``log`` receives one short line per step (the CLI sends them to stderr).
    """
    say = log or (lambda _message: None)
    check_opset(opset)
    if not checkpoints:
        raise GantoolError("nothing to export: no generator checkpoint given")
    paths = {ckpt: {p: onnx_path_for(ckpt, out_dir, p) for p in TOLERANCES} for ckpt in checkpoints}
    for outputs in paths.values():
        for path in outputs.values():
            check_output_path(path, force, "ONNX file")
    interfaces: dict[Path, GraphInterface] = {}
    for checkpoint in checkpoints:  # cheap (safetensors headers): refuse a wrong model before exporting any
        check_name_matches_kind(checkpoint)
        try:
            interfaces[checkpoint] = interface_for(read_spec(checkpoint))
        except GantoolError as exc:
            raise GantoolError(f"{checkpoint}: {exc}") from None
    results: list[ExportResult] = []
    with contextlib.ExitStack() as stack:
        for checkpoint, outputs in paths.items():
            results += _export_one(checkpoint, outputs, interfaces[checkpoint], opset, stack, say)
    return results


def check_name_matches_kind(checkpoint: Path) -> None:
    """A checkpoint named by the run-dir layout must be what its name says; other names are free.

    ``generator.safetensors`` is a GAN's, ``generator_a2b/b2a.safetensors`` the
    CycleGAN translators'. The runtime resolves run dirs by these names and the
    export lands beside them as ``<stem>.onnx``, so a mismatch would later be
    run as the wrong kind of model (or the wrong direction).
    """
    spec = read_spec(checkpoint)
    for direction in DIRECTIONS:
        if checkpoint.name == checkpoint_in(checkpoint.parent, direction).name:
            if spec.latent_dim is not None or spec.direction not in (direction, None):
                what = (
                    f"the {spec.direction} translator" if spec.direction else f"a {spec.kind} ({spec.arch}) generator"
                )
                raise GantoolError(f"{checkpoint} is named as the {direction} translator but holds {what}")
            return
    if checkpoint.name == checkpoint_in(checkpoint.parent).name and spec.latent_dim is None:
        raise GantoolError(
            f"{checkpoint} is named as a GAN generator but holds a {spec.kind} translator "
            f"(translators are {GENERATOR_STEM}_a2b / {GENERATOR_STEM}_b2a)"
        )


def _export_one(
    checkpoint: Path,
    paths: dict[str, Path],
    interface: GraphInterface,
    opset: int,
    stack: contextlib.ExitStack,
    say: Callable[[str], None],
) -> list[ExportResult]:
    """Both precisions of one checkpoint, staged on ``stack`` (renamed into place when it closes cleanly)."""
    module, spec = load_generator(checkpoint)
    with torch.inference_mode():  # PyTorch's answers, once for both precisions
        references = [module(torch.from_numpy(x)).numpy() for x in interface.parity_inputs]
    variants: dict[str, nn.Module] = {"fp32": module, "fp16": HalfPrecision(module)}
    results: list[ExportResult] = []
    for precision, path in paths.items():
        tmp = stack.enter_context(atomic_path(path))
        say(f"exporting {path.name} ({precision}, opset {opset})")
        model = _export(variants[precision], interface, opset)
        _stamp(model, spec, interface, precision)
        tmp.write_bytes(model.SerializeToString())
        validate(tmp, model, interface, precision, path.name)
        diff = max_abs_diff(tmp, interface, references)
        result = ExportResult(path, precision, diff, TOLERANCES[precision])
        say(f"{path.name}: max abs diff vs PyTorch {diff:.1e} (tolerance {result.tolerance:.0e})")
        if not result.ok:
            raise GantoolError(
                f"{path.name} differs from PyTorch by {diff:.2e} (tolerance {result.tolerance:.0e}); nothing written"
            )
        results.append(result)
    return results


def _dynamic_shapes(interface: GraphInterface) -> dict[int, object]:
    """torch.export's spelling of the interface's dynamic input axes: batch ≥ 1, sides 4·k with k ≥ 2."""
    axes: dict[int, object] = {}
    for axis, dim in enumerate(interface.input_dims):
        if dim == BATCH:
            axes[axis] = torch.export.Dim(BATCH, min=1)
        elif isinstance(dim, str):  # a side: a multiple of 4 by construction, at least MIN_SIDE
            axes[axis] = SIZE_MULTIPLE * torch.export.Dim(f"{dim}_{SIZE_MULTIPLE}", min=MIN_SIDE // SIZE_MULTIPLE)
    return axes


def _export(module: nn.Module, interface: GraphInterface, opset: int) -> onnx.ModelProto:
    """Run torch's exporter quietly; any failure becomes one GantoolError line."""
    example = torch.zeros(interface.example_shape)
    try:
        with quiet():
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[interface.input_name],
                output_names=[interface.output_name],
                dynamic_shapes=(_dynamic_shapes(interface),),
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
    model = program.model_proto
    _name_dynamic_axes(model, interface)
    return model


def _name_dynamic_axes(model: onnx.ModelProto, interface: GraphInterface) -> None:
    """Rename the exporter's symbols for the input's dynamic axes (``4*h4``) to the interface's names (``height``).

    The same symbol is renamed wherever it appears (output, intermediate
    shapes), so the file still says the output has the input's height.
    """
    dims = model.graph.input[0].type.tensor_type.shape.dim if len(model.graph.input) == 1 else []
    names = {
        dim.dim_param: want
        for dim, want in zip(dims, interface.input_dims)
        if isinstance(want, str) and dim.dim_param and dim.dim_param != want
    }
    if not names:
        return
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]


def _stamp(model: onnx.ModelProto, spec: ModelSpec, interface: GraphInterface, precision: str) -> None:
    """Make the file self-describing: who made it, and the full spec the runtime rebuilds from."""
    model.producer_name = "gantool"
    model.producer_version = __version__
    low, high = spec.value_range
    what = (
        f"{spec.direction} translator" if spec.direction else "translator" if interface.is_translator else "generator"
    )
    model.doc_string = f"gantool {spec.arch} {what} ({precision}): {interface.describe()} in [{low}, {high}]"
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {METADATA_KEY: spec.to_json(), PRECISION_KEY: precision})


def validate(path: Path, model: onnx.ModelProto, interface: GraphInterface, precision: str, name: str) -> None:
    """The written file passes onnx.checker, keeps the I/O contract and, for FP16, holds FP16 weights."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GantoolError(f"{name} fails onnx.checker: {_first_line(exc)}") from None
    check_io(model, interface, name)
    if precision == "fp16":
        check_fp16_weights(model, name)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
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
