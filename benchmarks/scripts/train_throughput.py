"""Training throughput: gantool's trainers against a plain PyTorch loop of the same model, in images per second.

The reference point is how pytorch-CycleGAN-and-pix2pix trains: eager FP32,
batch 1, a DataLoader with worker processes feeding the GPU. The plain loop
here is that loop, written out (its optimize_parameters), on gantool's own
ResNet and PatchGAN modules, with a DataLoader of ``--workers`` processes,
pinned memory and persistent workers. gantool's rows run its CycleGanTrainer
(the reference's recipe, so the same six translator passes per step) on data
held whole on the device, in FP32 and under ``--amp``, and over N processes
(``torchrun``'s agent, DDP; on the CPU the cores are shared out). The GAN rows
do the same for the MLP GAN at batch 64.

    python benchmarks/scripts/train_throughput.py --device cpu --size 256 --steps 3 --json benchmarks/results/train_throughput_cpu.json
    python benchmarks/scripts/train_throughput.py --device cuda --amp off,bf16 --steps 50 --json results.json

Images per second count training images of one domain per step (batch × ranks);
the timed steps follow ``--warmup`` steps, with the device synchronised at both ends.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from script_common import environment, save
from torch import nn

from gantool.models import MLPDiscriminator, MLPGenerator, PatchDiscriminator, ResnetGenerator

IMAGES = 16  # synthetic images per domain, at the load size (286 for a 256 crop)


def synthetic(count: int, side: int, channels: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, side, side, channels), dtype=np.uint8)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(step: Any, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` calls of ``step()`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - start


# -- the plain loops --------------------------------------------------------------------------------------------


class UnalignedImages(torch.utils.data.Dataset):
    """The reference's unaligned dataset: A in order, B at random, each randomly cropped and flipped, in [-1, 1]."""

    def __init__(self, a: np.ndarray, b: np.ndarray, size: int) -> None:
        self.a, self.b, self.size = a, b, size

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def _augment(self, image: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        top, left = rng.integers(0, image.shape[0] - self.size + 1, 2)
        crop = image[top : top + self.size, left : left + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div(127.5).sub(1.0)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng()  # fresh entropy in every worker, as torch's loaders give numpy
        return self._augment(self.a[index % len(self.a)], rng), self._augment(self.b[rng.integers(len(self.b))], rng)


def plain_cyclegan(args: argparse.Namespace, device: torch.device) -> float:
    """images/s of the reference's training step, written out: FP32, batch 1, DataLoader workers."""
    torch.manual_seed(0)
    g_a, g_b = (ResnetGenerator(3, args.ngf, args.blocks).to(device) for _ in range(2))
    d_a, d_b = (PatchDiscriminator(3, args.ngf).to(device) for _ in range(2))
    opt_g = torch.optim.Adam(itertools.chain(g_a.parameters(), g_b.parameters()), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(d_a.parameters(), d_b.parameters()), 2e-4, betas=(0.5, 0.999))
    load = round(args.size * 286 / 256)
    dataset = UnalignedImages(synthetic(IMAGES, load, 3, 1), synthetic(IMAGES, load, 3, 2), args.size)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=1, shuffle=True, num_workers=args.workers, drop_last=True,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )  # fmt: skip
    batches = (batch for _ in itertools.count() for batch in loader)
    mse, l1 = nn.MSELoss(), nn.L1Loss()

    def lsgan(prediction: torch.Tensor, target: float) -> torch.Tensor:
        return mse(prediction, torch.full_like(prediction, target))

    def step() -> None:
        real_a, real_b = (tensor.to(device, non_blocking=True) for tensor in next(batches))
        fake_b, fake_a = g_a(real_a), g_b(real_b)
        rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        opt_g.zero_grad()
        idt_a, idt_b = g_a(real_b), g_b(real_a)
        loss_g = lsgan(d_a(fake_b), 1.0) + lsgan(d_b(fake_a), 1.0) + 10 * l1(rec_a, real_a) + 10 * l1(rec_b, real_b)
        (loss_g + 5 * l1(idt_a, real_b) + 5 * l1(idt_b, real_a)).backward()
        opt_g.step()
        d_a.requires_grad_(True)
        d_b.requires_grad_(True)
        opt_d.zero_grad()
        loss_d = 0.5 * (lsgan(d_a(real_b), 1.0) + lsgan(d_a(fake_b.detach()), 0.0))
        loss_d = loss_d + 0.5 * (lsgan(d_b(real_a), 1.0) + lsgan(d_b(fake_a.detach()), 0.0))
        loss_d.backward()
        opt_d.step()

    return args.steps / timed_steps(step, device, args.warmup, args.steps)


def plain_gan(args: argparse.Namespace, device: torch.device) -> float:
    """images/s of the seed notes' GAN loop on the default MLPs: FP32, batch 64, a DataLoader over the images."""
    torch.manual_seed(0)
    hidden = [128, 256, 512]
    generator = MLPGenerator(100, hidden, (1, 28, 28)).to(device)
    discriminator = MLPDiscriminator(hidden, (1, 28, 28), 0.2, minibatch_std=True).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), 4e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), 4e-4, betas=(0.5, 0.999))
    images = torch.from_numpy(synthetic(2048, 28, 1, 0)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images), batch_size=64, shuffle=True, drop_last=True,
        num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )  # fmt: skip
    batches = (batch for _ in itertools.count() for (batch,) in loader)
    bce = nn.BCEWithLogitsLoss()

    def step() -> None:
        real = next(batches).to(device, non_blocking=True)
        with torch.no_grad():
            fake = generator(torch.randn(64, 100, device=device))  # the D step's fakes: no graph into G
        real_logits, fake_logits = discriminator(real), discriminator(fake)
        loss_d = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        logits = discriminator(generator(torch.randn(64, 100, device=device)))
        opt_g.zero_grad()
        bce(logits, torch.ones_like(logits)).backward()
        opt_g.step()
        discriminator.requires_grad_(True)

    return 64 * args.steps / timed_steps(step, device, args.warmup, args.steps)


# -- gantool's trainers -----------------------------------------------------------------------------------------


def gantool_rate(args: argparse.Namespace, model: str, amp: str, device: torch.device) -> float:
    """images/s of gantool's trainer for ``model`` in this process's world (all ranks together)."""
    from gantool.training.distributed import joined

    with joined(device) as world:
        trainer = (
            _cyclegan_trainer(args, amp, device, world) if model == "cyclegan" else _gan_trainer(amp, device, world)
        )
        batch = args_batch(model)
        batches = (batch for epoch in itertools.count(1) for batch in trainer.batches(epoch, 0))

        def step() -> None:
            trainer.record(trainer.train_step(1, next(batches)))

        seconds = timed_steps(step, device, args.warmup, args.steps)
        slowest = torch.tensor([seconds])
        if world.size > 1:
            import torch.distributed as dist

            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        return batch * world.size * args.steps / float(slowest)


def args_batch(model: str) -> int:
    return 1 if model == "cyclegan" else 64


def _cyclegan_trainer(args: argparse.Namespace, amp: str, device: torch.device, world: Any) -> Any:
    from gantool.training.config import CycleGanConfig
    from gantool.training.cyclegan import CycleGanTrainer
    from gantool.training.unpaired import UnpairedBatches

    cfg = CycleGanConfig(dataset="synthetic", size=args.size, ngf=args.ngf, ndf=args.ngf, blocks=args.blocks,
                         batch_size=1, lambda_cycle=10.0, lambda_cycle_b=None, cycle_recolor=False, amp=amp)  # fmt: skip
    load = round(args.size * 286 / 256)
    data = UnpairedBatches(synthetic(IMAGES, load, 3, 1), synthetic(IMAGES, load, 3, 2), args.size, True, device)
    return CycleGanTrainer(cfg, data, ("A", "B"), "synthetic", world)


def _gan_trainer(amp: str, device: torch.device, world: Any) -> Any:
    from gantool.data import pixels_to_unit
    from gantool.training.config import GanConfig
    from gantool.training.gan import GanTrainer, gan_spec

    cfg = GanConfig(amp=amp)
    pixels = synthetic(2048, 28, 1, 0)
    data = torch.from_numpy(pixels_to_unit(pixels)).to(device)
    return GanTrainer(cfg, gan_spec(cfg, pixels), data, "synthetic", world)


def over_processes(args: argparse.Namespace, model: str, amp: str, nproc: int) -> float:
    """Run this script's gantool row in ``nproc`` processes under torchrun; rank 0 prints images/s."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               __file__, "--worker", model, "--amp", amp, *_shared_options(args)]  # fmt: skip
    threads = str(max(1, (os.cpu_count() or 1) // nproc)) if args.device == "cpu" else "1"
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": threads}
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["images_per_s"])


def _shared_options(args: argparse.Namespace) -> list[str]:
    options = ["--device", args.device, "--size", str(args.size), "--ngf", str(args.ngf), "--blocks", str(args.blocks)]
    return [*options, "--steps", str(args.steps), "--warmup", str(args.warmup)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cyclegan,gan")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--amp", default="off,bf16", help="gantool precisions to run (off = FP32)")
    parser.add_argument("--nproc", default="1,2", help="process counts for gantool's FP32 row")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="the plain loop's DataLoader worker processes")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one row inside torchrun
    args = parser.parse_args()
    device = torch.device(args.device)

    if args.worker:
        rate = gantool_rate(args, args.worker, args.amp, device)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps({"images_per_s": rate}))
        return

    rows: list[dict[str, Any]] = []
    for model in args.models.split(","):
        plain = plain_cyclegan(args, device) if model == "cyclegan" else plain_gan(args, device)
        rows.append({"model": model, "loop": "plain PyTorch, FP32", "processes": 1, "images_per_s": plain})
        for amp in args.amp.split(","):
            rate = gantool_rate(args, model, amp, device)
            rows.append({"model": model, "loop": f"gantool, {'FP32' if amp == 'off' else amp}", "processes": 1,
                         "images_per_s": rate})  # fmt: skip
        for nproc in (int(n) for n in args.nproc.split(",") if int(n) > 1):
            rate = over_processes(args, model, "off", nproc)
            rows.append({"model": model, "loop": "gantool, FP32", "processes": nproc, "images_per_s": rate})
        for row in rows:
            if row["model"] == model:
                row["vs_plain"] = row["images_per_s"] / plain

    print("| model | loop | processes | images/s | vs plain |\n|---|---|---|---|---|", file=sys.stderr)
    for row in rows:
        print(f"| {row['model']} | {row['loop']} | {row['processes']} | {row['images_per_s']:.3g} | "
              f"{row['vs_plain']:.2f}× |", file=sys.stderr)  # fmt: skip
    settings = {key: value for key, value in vars(args).items() if key not in ("json", "worker")}
    save({"settings": settings, "environment": environment(), "rows": rows}, args.json)


if __name__ == "__main__":
    main()
