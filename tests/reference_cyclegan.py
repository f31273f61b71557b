"""A stand-in for the generator pytorch-CycleGAN-and-pix2pix trains, written here from its published description.

Zhu et al. 2017's ResNet generator as that repository lays it out: one
``model`` Sequential (reflection pad, 7×7 conv, norm, ReLU; two stride-2
convs; ``n_blocks`` residual blocks whose layers sit in a ``conv_block``
Sequential; two transposed convs; reflection pad, 7×7 conv, Tanh), with
InstanceNorm2d(affine=False, track_running_stats=False) and therefore biased
convolutions, reflection padding in the blocks and optional dropout between a
block's two convolutions. Its state dict has the same keys and shapes as a
``latest_net_G_A.pth``, so the importer is tested against the real layout
without downloading a file. Deliberately independent of gantool.models.
"""

from __future__ import annotations

import torch
from torch import nn


class ReferenceResnetBlock(nn.Module):
    """x + conv_block(x); conv_block = pad, conv3, norm, ReLU, [Dropout(0.5)], pad, conv3, norm (dim×H×W kept)."""

    def __init__(self, dim: int, use_dropout: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            nn.InstanceNorm2d(dim, affine=False, track_running_stats=False),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            nn.InstanceNorm2d(dim, affine=False, track_running_stats=False),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    """input_nc×H×W → output_nc×H×W, H and W multiples of 4 (two downsamplings, two upsamplings)."""

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9, use_dropout: bool = False
    ) -> None:
        super().__init__()

        def norm(width: int) -> nn.Module:
            return nn.InstanceNorm2d(width, affine=False, track_running_stats=False)

        stem: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),  # → ngf×H×W
            norm(ngf),
            nn.ReLU(True),
        ]
        down: list[nn.Module] = []
        width = ngf
        for _ in range(2):  # → 2ngf×H/2×W/2 → 4ngf×H/4×W/4
            down += [nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=True), norm(width * 2)]
            down.append(nn.ReLU(True))
            width *= 2
        body = [ReferenceResnetBlock(width, use_dropout) for _ in range(n_blocks)]
        up: list[nn.Module] = []
        for _ in range(2):  # → 2ngf×H/2×W/2 → ngf×H×W
            up += [
                nn.ConvTranspose2d(width, width // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True),
                norm(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        head = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]  # → output_nc×H×W
        self.model = nn.Sequential(*stem, *down, *body, *up, *head)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def reference_generator(ngf: int = 8, n_blocks: int = 2, seed: int = 0, **kwargs: object) -> ReferenceResnetGenerator:
    """A seeded reference generator in eval mode; conv weights drawn N(0, 0.02) like the original's init, biases too."""
    torch.manual_seed(seed)
    net = ReferenceResnetGenerator(ngf=ngf, n_blocks=n_blocks, **kwargs)  # type: ignore[arg-type]
    for layer in net.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.normal_(layer.bias, 0.0, 0.02)  # non-zero biases, so a dropped or swapped bias shows
    return net.eval()


def instance_norms(net: nn.Module) -> dict[str, int]:
    """InstanceNorm layers by module name, with their widths: where PyTorch < 0.4 files carry running statistics."""
    return {name: layer.num_features for name, layer in net.named_modules() if isinstance(layer, nn.InstanceNorm2d)}
