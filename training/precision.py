"""Mixed precision for training (``--amp``): autocast to bf16 or fp16, a gradient scaler for fp16, channels_last.

Weights, optimizer states and the weight average stay FP32; autocast runs the
matrix products and convolutions in half precision. What must stay exact
stays FP32: the GAN's BCE-with-logits (autocast computes it in FP32), and
CycleGAN's least-squares and L1 losses, whose logits and targets are cast
to FP32 before they are compared. fp16's narrow range needs a gradient
scaler, one per optimizer since G and D step on separate losses; bf16 has
FP32's range and needs none.

``auto`` picks bf16 on a CUDA GPU that has it (Ampere and later), fp16 on an
older one, and FP32 on the CPU, where autocast is slower than FP32 on most
processors.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from gantool.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

AMP_MODES = ("auto", "bf16", "fp16", "off")


def resolve_amp(mode: str, device: torch.device) -> str:
    """``auto`` → bf16, fp16 or off for ``device``; an explicit mode is checked against it."""
    import torch

    if mode not in AMP_MODES:
        raise UsageError(f"--amp {mode}: pick one of {', '.join(AMP_MODES)}")
    if mode == "auto":
        if device.type != "cuda":
            return "off"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--amp bf16: {torch.cuda.get_device_name(device)} has no bf16; use --amp fp16")
    return mode


class MixedPrecision:
    """The autocast context and, for fp16, the gradient scalers of one run (``mode``: bf16, fp16 or off)."""

    def __init__(self, mode: str, device: torch.device, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        import torch

        self.mode, self.device_type = mode, device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        self.optimizers = optimizers
        self.scalers = {
            name: torch.amp.GradScaler(device.type, enabled=mode == "fp16") for name in optimizers
        }  # disabled scalers pass losses and steps straight through

    def autocast(self) -> AbstractContextManager[Any]:
        """Forward passes under this: half precision where safe, FP32 elsewhere; a no-op when off."""
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def step(self, name: str, loss: torch.Tensor) -> None:
        """Backward ``loss`` and step optimizer ``name``: scaled for fp16 (a step with inf/NaN gradients is skipped)."""
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The fp16 scalers' scale and growth tracker (empty dicts when disabled), for an exact resume."""
        return {name: scaler.state_dict() for name, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, scaler in self.scalers.items():
            if state.get(name):
                scaler.load_state_dict(state[name])


def use_channels_last(networks: list[nn.Module], device: torch.device) -> bool:
    """Convolutional networks on CUDA train channels_last (NHWC), which tensor cores prefer; returns whether."""
    import torch

    if device.type != "cuda":
        return False
    for network in networks:
        network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return True


def describe(mode: str, requested: str, device: torch.device) -> str:
    """``mixed precision: bf16 (auto on cuda)``: what the run trains in and why, for the start of a run."""
    chosen = "off (FP32)" if mode == "off" else f"{mode} autocast"
    return f"mixed precision: {chosen} ({'auto' if requested == 'auto' else '--amp'} on {device.type})"
