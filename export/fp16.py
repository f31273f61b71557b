"""The FP16 variant of a generator: half-precision weights and compute, float32 at the edges.

Rather than rewriting the FP32 ONNX graph afterwards (onnxruntime's
``convert_float_to_float16`` appends its boundary Casts out of topological
order, which ``onnx.checker`` rejects), we hand the exporter a module that is
already FP16 inside and casts at its input and output. The exporter then
emits the Casts itself and knows every op's type constraints, so the graph is
valid by construction and the I/O contract (float32 in, float32 out: ``z`` →
``images`` for a GAN, ``images`` → ``translated`` for a translator) is the
same as the FP32 file's: a caller never needs to know which precision it loaded.

InstanceNorm (the CycleGAN translator's normalisation) stays FP16 too: the
ONNX InstanceNormalization op takes its statistics over a whole H×W plane,
which in FP16 arithmetic would overflow (65,536 squares at 256²), but
onnxruntime's CPU kernel accumulates them in float32 and only stores the
result in FP16. Measured on a 9-block ngf-64 ResNet at 256²: the FP16 file is
within 2.4e-3 of PyTorch FP32, and forcing the norms to FP32 inside the FP16
graph did not reduce that (the error is the FP16 rounding of the activations);
a single FP16 InstanceNormalization on planes with mean 1000 stays within
fp16 output rounding (1.9e-3). The parity check is what guards a model where
this would not hold.
"""

from __future__ import annotations

import copy

import onnx
import torch
from torch import nn

from gantool.errors import GantoolError


class HalfPrecision(nn.Module):
    """Wraps a float32 generator: float32 inputs (latents or images) → FP16 copy of the net → float32 images."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(module).half().eval()  # the caller's FP32 module stays untouched

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.inner(inputs.to(torch.float16)).to(torch.float32)  # Cast in, FP16 body, Cast out


def check_fp16_weights(model: onnx.ModelProto, name: str) -> None:
    """Refuse an "FP16" file that still carries float32 weights (they would silently run in FP32)."""
    float32 = [init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT]
    if float32:
        raise GantoolError(f"{name}: FP16 export left {len(float32)} float32 weight(s), e.g. {float32[0]}")
    if not any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer):
        raise GantoolError(f"{name}: FP16 export holds no float16 weights")
