"""Generator and discriminator networks, built from a ModelSpec by architecture name.

The vanilla GAN follows Goodfellow et al. 2014 and the seed notes (MLPs with
LeakyReLU 0.2 and a Tanh output); the conv generator follows the DCGAN shape
of pytorch/examples (ConvTranspose + BatchNorm + ReLU, Tanh out). GAN
generators take a latent N×Z and return images N×C×H×W in [-1, 1];
discriminators return logits (the sigmoid lives in the loss, for numerical
stability). CycleGAN's ResNet translator and 70×70 PatchGAN follow Zhu et al.
2017: images N×C×H×W in [-1, 1] in, the same shape out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from gantool.spec import ModelSpec


class MLPGenerator(nn.Module):
    """z (N×Z) → hidden LeakyReLU layers → Tanh → images (N×C×H×W)."""

    def __init__(self, latent_dim: int, hidden: list[int], image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.image_shape = image_shape
        layers: list[nn.Module] = []
        width = latent_dim
        for out in hidden:
            layers += [nn.Linear(width, out), nn.LeakyReLU(0.2)]  # N×width → N×out
            width = out
        layers += [nn.Linear(width, math.prod(image_shape)), nn.Tanh()]  # N×width → N×(C·H·W)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)  # N×C×H×W


class MinibatchStd(nn.Module):
    """Appends one feature to every row: the batch's standard deviation, averaged over the features.

    ProGAN's minibatch standard deviation (Karras et al. 2018), for the MLP: a
    discriminator that sees how much a batch varies can tell a generator that
    draws few digits from the real mix of ten, so the generator is paid to
    cover every class. Real and fake batches go through D separately, so the
    statistic never mixes the two. Under DDP each process takes its own batch's,
    as BatchNorm does.
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        spread = features.std(dim=0, correction=0).mean()  # scalar: a batch of one has none
        return torch.cat([features, spread.expand(len(features), 1)], dim=1)  # N×F → N×(F+1)


class MLPDiscriminator(nn.Module):
    """Images (N×C×H×W) → reversed hidden widths with LeakyReLU and dropout → [minibatch std] → one logit."""

    def __init__(
        self, hidden: list[int], image_shape: tuple[int, int, int], dropout: float = 0.3, minibatch_std: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]  # N×C×H×W → N×(C·H·W)
        width = math.prod(image_shape)
        for out in reversed(hidden):
            layers += [nn.Linear(width, out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = out
        if minibatch_std:
            layers.append(MinibatchStd())  # N×width → N×(width+1)
            width += 1
        layers.append(nn.Linear(width, 1))  # N×width → N×1 logit
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).view(-1)  # N


def dcgan_base_size(side: int) -> int:
    """Side of the first feature map: halve ``side`` while even and above 7 (28→7, 32→4, 64→4)."""
    while side % 2 == 0 and side > 7:
        side //= 2
    return side


def check_dcgan_geometry(height: int, width: int) -> None:
    """The DCGAN stack doubles a small square map, so it needs a square side like 28, 32 or 64."""
    if height != width or dcgan_base_size(height) > 8 or dcgan_base_size(height) < 3:
        raise ValueError(
            f"the dcgan architecture needs a square image whose side halves down to 3..8 (28, 32, 64…), got {height}×{width}"
        )


class DCGANGenerator(nn.Module):
    """z (N×Z) → ConvTranspose to a b×b map → ×2 upsampling blocks → Tanh → N×C×S×S."""

    def __init__(self, latent_dim: int, ngf: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, side, _ = image_shape
        check_dcgan_geometry(side, image_shape[2])
        base = dcgan_base_size(side)
        steps = int(math.log2(side // base))
        width = ngf * 2 ** (steps - 1)
        layers: list[nn.Module] = [
            nn.Unflatten(1, (latent_dim, 1, 1)),  # N×Z → N×Z×1×1
            nn.ConvTranspose2d(latent_dim, width, base, 1, 0, bias=False),  # → N×width×b×b
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(steps - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),  # ×2 spatial, ÷2 channels
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]  # → N×C×S×S
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """N×C×S×S → strided convs halving the map down to b×b → one logit per image."""

    def __init__(self, ndf: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, side, _ = image_shape
        base = dcgan_base_size(side)
        steps = int(math.log2(side // base))
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # S → S/2
        width = ndf
        for _ in range(steps - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),  # ÷2 spatial, ×2 channels
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, base, 1, 0, bias=False))  # b×b → 1×1 logit
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).view(-1)  # N


class ResnetBlock(nn.Module):
    """x + conv_block(x), with reflection padding so borders carry no zero-padding artefacts (C×H×W → C×H×W)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),  # C×H×W → C×H×W
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's translator (Zhu et al. 2017): c7s1-ngf, d2ngf, d4ngf, ``blocks``×R4ngf, u2ngf, ungf, c7s1-C, Tanh.

    N×C×H×W → N×C×H×W for any H, W that are multiples of 4 (two stride-2 downsamplings).
    InstanceNorm has no affine parameters and no running statistics, so the
    convolutions carry biases. The module layout (``model.N``, ``conv_block``)
    is the one pytorch-CycleGAN-and-pix2pix checkpoints use, which keeps
    importing them a matter of key checks. 9 blocks at ngf=64: 11,378,179 parameters.
    """

    def __init__(self, channels: int, ngf: int, blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7),  # C×H×W → ngf×H×W
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):  # ngf×H×W → 2ngf×H/2×W/2 → 4ngf×H/4×W/4
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(blocks)]  # 4ngf×H/4×W/4, unchanged
        for mult in (4, 2):  # 4ngf×H/4×W/4 → 2ngf×H/2×W/2 → ngf×H×W
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1),
                nn.InstanceNorm2d(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]  # ngf×H×W → C×H×W in [-1, 1]
        self.model = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


class PatchDiscriminator(nn.Module):
    """The 70×70 PatchGAN: N×C×H×W → N×1×H'×W' logits, one per overlapping 70×70 patch (for 256² inputs)."""

    def __init__(self, channels: int, ndf: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # H → H/2
        width = ndf
        for stride in (2, 2, 1):  # H/2 → H/4 → H/8 → H/8-1, channels doubling up to 8·ndf
            layers += [nn.Conv2d(width, width * 2, 4, stride, 1), nn.InstanceNorm2d(width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))  # → 1 logit map
        self.model = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


def _mlp_generator(spec: ModelSpec) -> nn.Module:
    assert spec.latent_dim is not None
    return MLPGenerator(spec.latent_dim, list(spec.arch_params["hidden"]), spec.image_shape)


def _dcgan_generator(spec: ModelSpec) -> nn.Module:
    assert spec.latent_dim is not None
    return DCGANGenerator(spec.latent_dim, spec.arch_params["ngf"], spec.image_shape)


def _resnet_generator(spec: ModelSpec) -> nn.Module:
    return ResnetGenerator(spec.channels, spec.arch_params["ngf"], spec.arch_params["blocks"])


# Generators by architecture name: the spec's "arch" picks the builder.
GENERATORS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "mlp": _mlp_generator,
    "dcgan": _dcgan_generator,
    "resnet": _resnet_generator,
}


def _mlp_discriminator(spec: ModelSpec, dropout: float, minibatch_std: bool) -> nn.Module:
    return MLPDiscriminator(list(spec.arch_params["hidden"]), spec.image_shape, dropout, minibatch_std)


def _dcgan_discriminator(spec: ModelSpec, dropout: float, minibatch_std: bool) -> nn.Module:
    return DCGANDiscriminator(spec.arch_params["ngf"], spec.image_shape)


DISCRIMINATORS: dict[str, Callable[[ModelSpec, float, bool], nn.Module]] = {
    "mlp": _mlp_discriminator,
    "dcgan": _dcgan_discriminator,
}


def build_generator(spec: ModelSpec) -> nn.Module:
    """A freshly initialised generator of the spec's architecture."""
    return GENERATORS[spec.arch](spec)


def build_discriminator(spec: ModelSpec, dropout: float = 0.3, minibatch_std: bool = False) -> nn.Module:
    """The discriminator that trains against the spec's GAN generator (CycleGAN uses PatchDiscriminator).

    ``dropout`` and ``minibatch_std`` apply to the MLP; the DCGAN discriminator has neither.
    """
    return DISCRIMINATORS[spec.arch](spec, dropout, minibatch_std)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
