"""Write a run dir holding the reference CycleGAN translator size, randomly initialised, for timing.

Speed does not depend on the weights, and training a 256² horse↔zebra model
needs data and hours this repository does not ship; so benchmarks of the
translator's *speed* use the published architecture (ResNet generator, 9
residual blocks, ngf 64: 11,378,179 parameters) with seeded random weights.
Both directions are written, as ``gantool train cyclegan`` would.

    python benchmarks/scripts/reference_translator.py runs/resnet9_256 --size 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gantool.artifacts import DIRECTIONS, checkpoint_in
from gantool.checkpoint import save_generator
from gantool.models import build_generator
from gantool.spec import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--size", type=int, default=256, help="native image side (default 256)")
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for direction in DIRECTIONS:
        path = checkpoint_in(args.run_dir, direction)
        if path.exists():
            raise SystemExit(f"{path} exists; remove it or pick another run dir")
        spec = ModelSpec(
            kind="cyclegan",
            arch="resnet",
            arch_params={"ngf": args.ngf, "blocks": args.blocks},
            channels=3,
            height=args.size,
            width=args.size,
            direction=direction,
            domains=("A", "B"),
            provenance={"note": "random init, for timing only", "seed": args.seed},
        )
        torch.manual_seed(args.seed + DIRECTIONS.index(direction))
        module = build_generator(spec).eval()
        args.run_dir.mkdir(parents=True, exist_ok=True)
        save_generator(module, spec, path)
        params = sum(p.numel() for p in module.parameters())
        print(f"wrote {path} ({params:,} parameters, {args.size}x{args.size})")


if __name__ == "__main__":
    main()
