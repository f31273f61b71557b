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

Below it, the reference's test-time pipeline (``test.py``'s input transform and
``tensor2im``), so gantool's translations can be compared with its pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
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


# ---- test.py's input and output, written from the reference's documented defaults -------------------------------
# test.py sets load_size = crop_size = 256, no_flip, serial batches of 1, and reads each photo as SingleDataset does:
# Image.open(path).convert('RGB'), then get_transform: transforms.Resize([load_size, load_size], BICUBIC) (on a Pillow
# image torchvision calls img.resize((w, h), Image.BICUBIC)), a crop of crop_size that is the identity at 256,
# ToTensor (÷255) and Normalize(0.5, 0.5). With --preprocess none it instead resizes to the image's own size rounded
# to a multiple of 4 (__make_power_2, Python's round). util.tensor2im brings the output back to 8 bits by truncation.


def reference_input(path: Path, load_size: int | None = 256) -> torch.Tensor:
    """One photo → 1×3×H×W in [-1, 1] as test.py feeds it (``load_size`` None: ``--preprocess none``)."""
    image = Image.open(path).convert("RGB")
    if load_size is not None:
        image = image.resize((load_size, load_size), Image.BICUBIC)
    else:
        width, height = image.size
        rounded = (int(round(width / 4) * 4), int(round(height / 4) * 4))
        if rounded != image.size:
            image = image.resize(rounded, Image.BICUBIC)
    tensor = torch.from_numpy(np.array(image, np.uint8, copy=True)).permute(2, 0, 1).float().div(255)  # ToTensor
    return ((tensor - 0.5) / 0.5)[None]  # Normalize((0.5,)*3, (0.5,)*3)


def tensor2im(output: torch.Tensor) -> np.ndarray:
    """util.tensor2im: the first image of a batch → uint8 H×W×3 (grey tiled to 3), truncated, not rounded."""
    image = output[0].cpu().float().numpy()
    if image.shape[0] == 1:
        image = np.tile(image, (3, 1, 1))
    return ((np.transpose(image, (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)


def reference_translation(net: nn.Module, path: Path, load_size: int | None = 256) -> np.ndarray:
    """What test.py writes for ``path``: uint8 H×W×3, the pixels of its ``<name>_fake.png``."""
    with torch.no_grad():
        return tensor2im(net(reference_input(path, load_size)))
