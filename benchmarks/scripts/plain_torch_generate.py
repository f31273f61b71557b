"""The baseline `gantool generate` must beat: a plain PyTorch script, written the usual way.

It loads the same generator checkpoint (safetensors weights; the MLP layout read
from the spec in the file's metadata), samples N latents, runs the generator,
and saves the images one by one with PIL. No gantool import: this is what a
user would write by hand.

    python benchmarks/scripts/plain_torch_generate.py runs/digits/generator.safetensors out_dir -n 1000
"""

import argparse
import json
import os

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn


def build_mlp(spec: dict) -> nn.Module:
    """The MLP generator of the spec, with the same parameter names as the checkpoint (net.N.*)."""
    layers, width = [], spec["latent_dim"]
    for out in spec["arch_params"]["hidden"]:
        layers += [nn.Linear(width, out), nn.LeakyReLU(0.2)]
        width = out
    layers += [nn.Linear(width, spec["channels"] * spec["height"] * spec["width"]), nn.Tanh()]
    module = nn.Module()
    module.net = nn.Sequential(*layers)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("out_dir")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with safe_open(args.checkpoint, framework="pt") as handle:
        spec = json.loads(handle.metadata()["gantool.spec"])
    model = build_mlp(spec)
    model.load_state_dict(load_file(args.checkpoint))
    model.eval()

    torch.manual_seed(args.seed)
    z = torch.randn(args.n, spec["latent_dim"])
    with torch.no_grad():
        images = model.net(z).view(args.n, spec["height"], spec["width"])
    pixels = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()

    os.makedirs(args.out_dir, exist_ok=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(os.path.join(args.out_dir, f"{i:06d}.png"))


if __name__ == "__main__":
    main()
