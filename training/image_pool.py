"""The history of generated images that CycleGAN's discriminators train on (Shrivastava et al. 2017).

Showing a discriminator only the newest fakes lets the two players chase each
other in circles; a buffer of earlier fakes damps that. This follows the
reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix, util/image_pool.py):
until the pool holds ``size`` images every fake goes in and is returned as is;
after that each fake, with probability one half, swaps places with a random
stored one, which is returned instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class ImagePool:
    """Up to ``size`` earlier generated images (each C×H×W); ``size`` 0 disables it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """N×C×H×W fakes → N×C×H×W images for the discriminator, some from history; draws from ``generator`` (CPU)."""
        import torch

        images = images.detach().float()  # FP32 whatever autocast made them: the pool mixes steps, and resumes
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=generator).item() > 0.5:
                index = int(torch.randint(self.size, (), generator=generator))
                out.append(self.images[index])
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images as one K×C×H×W tensor (an empty tensor while the pool is empty)."""
        import torch

        return {"images": torch.stack(self.images) if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        stored = state["images"]
        if len(stored) > self.size:
            raise ValueError(f"the saved pool holds {len(stored)} images, more than --pool-size {self.size}")
        self.images = [image.to(device) for image in stored]
