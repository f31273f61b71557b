"""The baseline `gantool translate` must beat: a plain PyTorch script translating a folder, written the usual way.

It builds the ResNet generator (gantool.models.ResnetGenerator: the architecture
a user copies from the CycleGAN repository), loads the safetensors checkpoint
into it (the sizes read from the spec in the file's metadata), then for each
image: PIL in, RGB, resize to the native size, normalise to [-1, 1], forward
(one image at a time by default, or --batch-size at once), back to uint8, PIL
out as PNG under the input's name. Prints a JSON summary (--json also writes it).

    python benchmarks/scripts/plain_torch_translate.py RUN/generator_a2b.safetensors images/ out/
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from gantool.models import ResnetGenerator

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load(checkpoint: str) -> tuple[torch.nn.Module, dict]:
    """The generator in eval mode, and the spec the checkpoint carries."""
    with safe_open(checkpoint, framework="pt") as handle:
        spec = json.loads(handle.metadata()["gantool.spec"])
    params = spec["arch_params"]
    model = ResnetGenerator(spec["channels"], params["ngf"], params["blocks"])
    model.load_state_dict(load_file(checkpoint))
    return model.eval(), spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a CycleGAN generator checkpoint, e.g. RUN/generator_a2b.safetensors")
    parser.add_argument("images", help="a folder of images")
    parser.add_argument("out_dir")
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default 1)")
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args()

    start = time.perf_counter()
    model, spec = load(args.checkpoint)
    mode = "L" if spec["channels"] == 1 else "RGB"
    size = (spec["width"], spec["height"])
    names = sorted(name for name in os.listdir(args.images) if name.lower().endswith(SUFFIXES))
    os.makedirs(args.out_dir, exist_ok=True)
    for first in range(0, len(names), args.batch_size):
        batch = names[first : first + args.batch_size]
        pixels = []
        for name in batch:
            image = Image.open(os.path.join(args.images, name)).convert(mode)
            if image.size != size:
                image = image.resize(size, Image.Resampling.BICUBIC)
            pixels.append(np.asarray(image, dtype=np.float32).reshape(size[1], size[0], spec["channels"]))
        inputs = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2) / 127.5 - 1.0
        with torch.no_grad():
            outputs = model(inputs)
        images = ((outputs + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for name, image in zip(batch, images):
            out = Image.fromarray(image[:, :, 0] if spec["channels"] == 1 else image)
            out.save(os.path.join(args.out_dir, os.path.splitext(name)[0] + ".png"))
    seconds = time.perf_counter() - start
    summary = {
        "images": len(names),
        "batch_size": args.batch_size,
        "seconds_after_imports": seconds,
        "images_per_s": len(names) / seconds if seconds > 0 else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
