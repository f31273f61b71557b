"""Proof that an exported file is the model: its I/O contract, and its outputs against PyTorch's.

An ONNX file that loads is not yet a correct one: a folded BatchNorm, an
FP16 overflow or an axis frozen to the traced example's size all load fine
and produce wrong images. So every export is run with onnxruntime on the same
deterministic inputs as the PyTorch module (the interface's parity inputs:
two batch sizes for a GAN, two batch sizes *and* two image sizes for a
translator, which also proves those axes are dynamic), and the worst absolute
difference decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from gantool.errors import GantoolError
from gantool.export.interface import GraphInterface


def check_io(model: onnx.ModelProto, interface: GraphInterface, name: str) -> None:
    """The graph's one input and one output are float32, named and shaped as the interface says.

    A dynamic axis must be symbolic and carry the interface's name (``batch``,
    ``height``, ``width``); a fixed axis must have its size (or be symbolic).
    """
    expected = {
        "input": (model.graph.input, interface.input_name, interface.input_dims),
        "output": (model.graph.output, interface.output_name, interface.output_dims),
    }
    for role, (values, want_name, want_dims) in expected.items():
        if [v.name for v in values] != [want_name]:
            raise GantoolError(f"{name}: expected one {role} named {want_name!r}, got {[v.name for v in values]}")
        tensor = values[0].type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            raise GantoolError(f"{name}: {role} {want_name!r} is not float32")
        dims = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in tensor.shape.dim)
        if len(dims) != len(want_dims) or not all(
            got == want if isinstance(want, str) else got in (want, None) or isinstance(got, str)
            for got, want in zip(dims, want_dims)
        ):
            shape = ", ".join(map(str, want_dims))
            raise GantoolError(f"{name}: {role} {want_name!r} has shape {dims}, expected [{shape}]")


def max_abs_diff(onnx_path: Path, interface: GraphInterface, references: Sequence[np.ndarray]) -> float:
    """Worst |onnxruntime − reference| over the interface's parity inputs (NaN counts as ∞).

    ``references[i]`` is PyTorch's output for ``interface.parity_inputs[i]``,
    computed once per checkpoint and shared by the FP32 and FP16 checks.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT's Fail/InvalidGraph/... derive from Exception only
        raise GantoolError(f"onnxruntime cannot load the exported model: {_first_line(exc)}") from None
    worst = 0.0
    for inputs, want in zip(interface.parity_inputs, references, strict=True):
        shape = "×".join(map(str, inputs.shape))
        try:
            (got,) = session.run([interface.output_name], {interface.input_name: inputs})
        except Exception as exc:  # noqa: BLE001 - as above
            raise GantoolError(
                f"onnxruntime cannot run the exported model on a {shape} input: {_first_line(exc)}"
            ) from None
        if got.shape != want.shape:
            raise GantoolError(f"exported model returned shape {got.shape} for a {shape} input, PyTorch {want.shape}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        worst = max(worst, diff if np.isfinite(diff) else float("inf"))
    return worst


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
