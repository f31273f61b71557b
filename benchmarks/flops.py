"""FLOPs per image: 2 × the multiply-accumulates of one forward pass, counted from the layers a forward pass calls.

The generator is built from its spec on torch's ``meta`` device and run on a
``meta`` input of batch 1: shapes propagate, nothing is computed and no weights
are allocated, so counting a 256² ResNet-9 costs well under a second and no
memory. Forward hooks on the layers that carry the arithmetic add up their
MACs:

- ``Linear``: output elements × in_features;
- ``Conv2d``: output elements × in_channels/groups × kernel area;
- ``ConvTranspose2d``: output elements × in_channels/groups × kernel area, i.e.
  the convolution it defines over its stride-dilated input. This is the
  convention of torchprofile, which the published GAN figures use (CycleGAN's
  ResNet-9 at 256²: 56.8 G MACs, GAN Compression's README), so our numbers
  compare with theirs; counting only products with non-inserted inputs
  (input elements × out_channels/groups × kernel area) gives 49.6 G there.

Normalisation, activations, padding and the residual additions are a few
operations per element, under 0.5% of a convolutional generator, and left out
(as torchprofile leaves out activations). FLOPs are 2 × MACs (one multiply, one
add), the unit ``achieved_gflops`` is reported in.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gantool.spec import ModelSpec

_CACHE: dict[tuple[str, int, int], float] = {}


def flops_per_image(spec: ModelSpec, height: int, width: int) -> float:
    """2 × MACs of one forward pass of ``spec``'s generator on one image (or latent) at ``height``×``width``.

    A GAN's output size is fixed by its spec, so ``height``/``width`` only key the
    cache there; a translator is counted at the size given. Cached per
    (architecture, size): the count needs torch, so callers check that it imports.
    """
    key = (_architecture_key(spec), height, width)
    if key not in _CACHE:
        _CACHE[key] = 2.0 * forward_macs(spec, height, width)
    return _CACHE[key]


def forward_macs(spec: ModelSpec, height: int, width: int) -> int:
    """MACs of one batch-1 forward pass, counted on the meta device (see the module docstring for the rules)."""
    import torch
    from torch import nn

    from gantool.models import build_generator

    with torch.device("meta"):
        module = build_generator(spec).eval()
    shape = (1, spec.latent_dim) if spec.latent_dim is not None else (1, spec.channels, height, width)
    total = 0

    def count(layer: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += layer_macs(layer, output.shape)

    hooks = [
        layer.register_forward_hook(count)
        for layer in module.modules()
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.no_grad():
            module(torch.empty(shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def layer_macs(layer: Any, output_shape: tuple[int, ...]) -> int:
    """MACs of one Linear / Conv2d / ConvTranspose2d call that produced ``output_shape``."""
    from torch import nn

    elements = math.prod(output_shape)
    if isinstance(layer, nn.Linear):
        return int(elements * layer.in_features)
    kernel = math.prod(layer.kernel_size)
    return int(elements * (layer.in_channels // layer.groups) * kernel)


def _architecture_key(spec: ModelSpec) -> str:
    """What decides the layers: architecture, its parameters, channels and latent size (not provenance, not names)."""
    return json.dumps(
        [spec.arch, spec.arch_params, spec.channels, spec.latent_dim, spec.height, spec.width], sort_keys=True
    )
