"""The FP16 variant of a generator: half-precision weights and compute, float32 at the edges.

Rather than rewriting the FP32 ONNX graph afterwards (onnxruntime's
``convert_float_to_float16`` appends its boundary Casts out of topological
order, which ``onnx.checker`` rejects), we hand the exporter a module that is
already FP16 inside and casts at its input and output. The exporter then
emits the Casts itself and knows every op's type constraints, so the graph is
valid by construction and the I/O contract (float32 ``z`` in, float32
``images`` out) is the same as the FP32 file's: a caller never needs to know
which precision it loaded.
"""

from __future__ import annotations

import copy

import onnx
import torch
from torch import nn

from gantool.errors import GantoolError


class HalfPrecision(nn.Module):
    """Wraps a float32 generator: z (N×Z, float32) → FP16 copy of the net → images (N×C×H×W, float32)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(module).half().eval()  # the caller's FP32 module stays untouched

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner(z.to(torch.float16)).to(torch.float32)  # Cast in, FP16 body, Cast out


def check_fp16_weights(model: onnx.ModelProto, name: str) -> None:
    """Refuse an "FP16" file that still carries float32 weights (they would silently run in FP32)."""
    float32 = [init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT]
    if float32:
        raise GantoolError(f"{name}: FP16 export left {len(float32)} float32 weight(s), e.g. {float32[0]}")
    if not any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer):
        raise GantoolError(f"{name}: FP16 export holds no float16 weights")
