"""Proof that an exported file is the model: its I/O contract, and its outputs against PyTorch's.

An ONNX file that loads is not yet a correct one: a folded BatchNorm, an
FP16 overflow or a batch axis frozen to the example's size all load fine and
produce wrong images. So every export is run with onnxruntime on the same
deterministic latents as the PyTorch module, at two batch sizes (which also
proves the batch axis is dynamic), and the worst absolute difference decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from gantool.errors import GantoolError
from gantool.latents import latent_batch
from gantool.spec import ModelSpec

INPUT_NAME = "z"  # float32 [batch, latent_dim]; the runtime feeds this name
OUTPUT_NAME = "images"  # float32 [batch, C, H, W] in spec.value_range
PARITY_BATCH_SIZES = (1, 16)
PARITY_SEED = 0


def check_io(model: onnx.ModelProto, spec: ModelSpec, name: str) -> None:
    """The graph's inputs and outputs are exactly what the runtime expects, batch axis symbolic."""
    assert spec.latent_dim is not None
    expected = {
        "input": (model.graph.input, INPUT_NAME, (None, spec.latent_dim)),
        "output": (model.graph.output, OUTPUT_NAME, (None, *spec.image_shape)),
    }
    for role, (values, want_name, want_dims) in expected.items():
        if [v.name for v in values] != [want_name]:
            raise GantoolError(f"{name}: expected one {role} named {want_name!r}, got {[v.name for v in values]}")
        tensor = values[0].type.tensor_type
        if tensor.elem_type != onnx.TensorProto.FLOAT:
            raise GantoolError(f"{name}: {role} {want_name!r} is not float32")
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        if (
            len(dims) != len(want_dims)
            or dims[0] is not None
            or any(got not in (want, None) for got, want in zip(dims[1:], want_dims[1:]))
        ):
            shape = ", ".join(map(str, want_dims[1:]))
            raise GantoolError(f"{name}: {role} {want_name!r} has shape {dims}, expected (batch, {shape})")


def max_abs_diff(
    onnx_path: Path,
    reference: Callable[[np.ndarray], np.ndarray],
    latent_dim: int,
    batch_sizes: Sequence[int] = PARITY_BATCH_SIZES,
) -> float:
    """Worst |onnxruntime − reference| over deterministic latents at each batch size (NaN counts as ∞)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT's Fail/InvalidGraph/... derive from Exception only
        raise GantoolError(f"onnxruntime cannot load the exported model: {_first_line(exc)}") from None
    worst = 0.0
    for batch in batch_sizes:
        z = latent_batch(PARITY_SEED, 0, batch, latent_dim)
        try:
            (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: z})
        except Exception as exc:  # noqa: BLE001 - as above
            raise GantoolError(
                f"onnxruntime cannot run the exported model at batch {batch}: {_first_line(exc)}"
            ) from None
        want = reference(z)
        if got.shape != want.shape:
            raise GantoolError(f"exported model returned shape {got.shape} at batch {batch}, PyTorch {want.shape}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        worst = max(worst, diff if np.isfinite(diff) else float("inf"))
    return worst


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
