"""Training CycleGAN (Zhu et al. 2017) as junyanz/pytorch-CycleGAN-and-pix2pix does.

Two ResNet translators, G_A: A→B and G_B: B→A, and two 70×70 PatchGANs:
D_A judges domain B (G_A's outputs), D_B domain A, so every ``_A`` metric
belongs to the A→B side as in the reference. Per batch, one generator update
on the sum of

- ``loss_G_A``, ``loss_G_B``: LSGAN, mean (D(fake) − 1)², fakes straight from the translators;
- ``loss_cycle_A`` = λ·|G_B(G_A(a)) − a|₁ (λ = ``--lambda-cycle``, 10 as in the reference, 30 on
  digits-m), ``loss_cycle_B`` likewise with λ_B (``--lambda-cycle-b``: λ, 0 on digits-m);
- ``loss_idt_A`` = λ·λ_idt·|G_A(b) − b|₁, ``loss_idt_B`` likewise: a translator fed its own
  target domain should leave it alone, which keeps colours from drifting.

With ``--cycle-recolor`` the A→B→A cycle reads G_A(a) with its channels in a
random order and each channel's sign flipped at random, per image: G_B must
then find the content whatever its colours and polarity, as it must in a B whose
images vary in both (digits-m's photo patches, dark or bright). With
λ_B = 0 the B→A→B cycle is not computed: where B holds detail A cannot carry
(a background), that cycle pays G_B to hide it in its output instead of
translating (Chu et al. 2017, "CycleGAN, a master of steganography").

Then one update of both discriminators on ½[(D(real) − 1)² + D(fake)²], the
fakes drawn through an image pool of 50. Adam 2e-4, β=(0.5, 0.999), two
optimizers (both translators, both discriminators) whose rate stays constant
for ``--epochs`` and then falls linearly over ``--epochs-decay``.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool import __version__
from gantool.artifacts import DIRECTIONS, checkpoint_in
from gantool.errors import ArtifactError, UsageError
from gantool.spec import ModelSpec
from gantool.training.config import CycleGanConfig
from gantool.training.distributed import World, job_summary, joined, launched_world_size, per_rank_seed
from gantool.training.image_pool import ImagePool
from gantool.training.loop import (
    NOISE_STREAM,
    Saving,
    resolve_device,
    start_training,
)
from gantool.training.precision import MixedPrecision, describe, resolve_amp, use_channels_last
from gantool.training.run_dir import sample_grid_path, write_sample_grid
from gantool.training.state import restore_rng_states, rng_states
from gantool.training.unpaired import UnpairedBatches, load_unpaired

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import numpy as np
    import torch
    from torch import nn

    from gantool.training.observers import EpochObserver

ADAM_BETAS = (0.5, 0.999)
LOSSES = ("loss_G_A", "loss_G_B", "loss_cycle_A", "loss_cycle_B", "loss_idt_A", "loss_idt_B", "loss_D_A", "loss_D_B")


def lr_factor(finished_epochs: int, epochs: int, epochs_decay: int) -> float:
    """The learning-rate multiplier for the epoch after ``finished_epochs``: 1 for the first ``epochs``, then linear.

    As the reference's linear policy: epoch ``epochs + k`` trains at
    1 − k/(decay + 1), so the rate would reach 0 one epoch after the last and no
    epoch is spent at 0.
    """
    return 1.0 - max(0, finished_epochs + 1 - epochs) / (epochs_decay + 1)


def init_normal(module: nn.Module) -> None:
    """The reference's ``init_type normal``: conv weights N(0, 0.02), biases 0 (InstanceNorm has no weights)."""
    from torch import nn

    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class CycleGanTrainer:
    """Both translators, both discriminators, their optimizers and schedules, the image pools.

    In a world of many ranks each holds replicas of the four networks and trains
    on its share of every global batch. The image pools and the noise that
    feeds them and ``--cycle-recolor`` are each rank's own.
    """

    def __init__(
        self, cfg: CycleGanConfig, data: UnpairedBatches, domains: tuple[str, str], dataset_name: str,
        world: World | None = None,
    ) -> None:  # fmt: skip
        import torch
        from torch.optim.lr_scheduler import LambdaLR

        from gantool.models import PatchDiscriminator, ResnetGenerator
        from gantool.training.model_size import refuse_oversized

        self.cfg, self.data, self.domains, self.dataset_name = cfg, data, domains, dataset_name
        self.world = world or World()
        self.device = data.a.device
        refuse_oversized(
            lambda: (*(ResnetGenerator(3, cfg.ngf, cfg.blocks) for _ in range(2)), PatchDiscriminator(3, cfg.ndf)),
            "--ngf or --blocks",
        )
        torch.manual_seed(cfg.seed)  # initial weights follow --seed
        self.gen_a2b, self.gen_b2a = (ResnetGenerator(3, cfg.ngf, cfg.blocks).to(self.device) for _ in range(2))
        self.disc_b, self.disc_a = (PatchDiscriminator(3, cfg.ndf).to(self.device) for _ in range(2))
        for net in (self.gen_a2b, self.gen_b2a, self.disc_b, self.disc_a):
            net.apply(init_normal)
        self.channels_last = use_channels_last([self.gen_a2b, self.gen_b2a, self.disc_b, self.disc_a], self.device)
        self.g_a2b, self.g_b2a, self.d_b, self.d_a = (
            self.world.parallel(net) for net in (self.gen_a2b, self.gen_b2a, self.disc_b, self.disc_a)
        )
        generators = itertools.chain(self.gen_a2b.parameters(), self.gen_b2a.parameters())
        self.opt_g = torch.optim.Adam(generators, lr=cfg.lr, betas=ADAM_BETAS)
        discriminators = itertools.chain(self.disc_b.parameters(), self.disc_a.parameters())
        self.opt_d = torch.optim.Adam(discriminators, lr=cfg.lr, betas=ADAM_BETAS)
        self.amp = MixedPrecision(resolve_amp(cfg.amp, self.device), self.device, {"g": self.opt_g, "d": self.opt_d})

        def schedule(finished: int) -> float:  # reads self.cfg when called: a resume that trains longer follows it
            return lr_factor(finished, self.cfg.epochs, self.cfg.epochs_decay)

        self.sched_g, self.sched_d = LambdaLR(self.opt_g, schedule), LambdaLR(self.opt_d, schedule)
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)  # fakes of A, fakes of B
        noise_seed = per_rank_seed(cfg.seed, self.world.rank, NOISE_STREAM)
        self.noise = torch.Generator().manual_seed(noise_seed)  # the pools' and recolouring's draws, on the CPU
        self.steps = 0
        self.steps_per_epoch = data.steps_per_epoch(cfg.batch_size, self.world.size)
        self.fixed_a, self.fixed_b = data.fixed()
        self.sums = torch.zeros(len(LOSSES), device=self.device)  # the epoch's running loss sums

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        """One translator update then one discriminator update; returns the eight losses in LOSSES order."""
        import torch

        with self.amp.autocast():
            generator_losses, fake_b, fake_a = self._generator_losses(real_a, real_b)
        self.amp.step("g", torch.stack(generator_losses).sum())

        self.disc_a.requires_grad_(True)
        self.disc_b.requires_grad_(True)
        with self.amp.autocast():
            loss_d_a = _discriminator_loss(self.d_b, real_b, self.pool_b.query(fake_b, self.noise))
            loss_d_b = _discriminator_loss(self.d_a, real_a, self.pool_a.query(fake_a, self.noise))
        self.amp.step("d", loss_d_a + loss_d_b)
        self.steps += 1
        return torch.stack([*generator_losses, loss_d_a, loss_d_b]).detach()

    def _generator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The six translator losses (LOSSES order, FP32) and both fakes, for one batch of each domain."""
        import torch

        cfg = self.cfg
        fake_b = self.g_a2b(real_a)  # N×3×S×S each
        fake_a = self.g_b2a(real_b)
        self.disc_a.requires_grad_(False)  # the translators' update leaves the discriminators' weights alone
        self.disc_b.requires_grad_(False)  # (and gives DDP no discriminator gradient to all-reduce)
        loss_g_a, loss_g_b = _lsgan(self.d_b(fake_b), 1.0), _lsgan(self.d_a(fake_a), 1.0)
        zero = torch.zeros((), device=self.device)
        read_back = recolor(fake_b, self.noise) if cfg.cycle_recolor else fake_b
        loss_cycle_a = _l1(self.g_b2a(read_back), real_a) * cfg.lambda_cycle
        loss_cycle_b = _l1(self.g_a2b(fake_a), real_b) * cfg.lambda_b if cfg.lambda_b > 0 else zero
        if cfg.lambda_identity > 0:  # both scale with lambda_cycle: the reference scales G_A's with lambda_B
            loss_idt_a = _l1(self.g_a2b(real_b), real_b) * cfg.lambda_cycle * cfg.lambda_identity
            loss_idt_b = _l1(self.g_b2a(real_a), real_a) * cfg.lambda_cycle * cfg.lambda_identity
        else:
            loss_idt_a = loss_idt_b = zero
        return [loss_g_a, loss_g_b, loss_cycle_a, loss_cycle_b, loss_idt_a, loss_idt_b], fake_b, fake_a

    def batches(self, epoch: int, start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        batches = self.data.epoch(self.cfg.seed, epoch, self.cfg.batch_size, start, self.world.rank, self.world.size)
        if not self.channels_last:
            return batches
        layout = torch.channels_last
        return ((a.contiguous(memory_format=layout), b.contiguous(memory_format=layout)) for a, b in batches)

    def train_step(self, index: int, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        return dict(zip(LOSSES, self.step(*batch)))

    def record(self, values: dict[str, torch.Tensor]) -> None:
        import torch

        self.sums += torch.stack([values[name] for name in LOSSES])

    def end_epoch(self) -> dict[str, float]:
        lr = self.opt_g.param_groups[0]["lr"]  # the rate this epoch trained at
        self.sched_g.step()  # the rate of the next epoch
        self.sched_d.step()
        means = (self.sums / self.steps_per_epoch).tolist()
        self.sums.zero_()
        return {"steps": self.steps, **{name: round(value, 5) for name, value in zip(LOSSES, means)}, "lr": lr}

    def networks(self) -> list[nn.Module]:
        return [self.gen_a2b, self.gen_b2a, self.disc_a, self.disc_b]

    def panel_pixels(self) -> np.ndarray:
        """Rows real A, G_A(A), G_B(G_A(A)), real B, G_B(B), G_A(G_B(B)) of the fixed images, as uint8 N×S×S×3."""
        import torch

        from gantool.images import to_uint8

        with torch.no_grad():  # InstanceNorm keeps no running statistics: train and eval mode agree
            fake_b, fake_a = self.gen_a2b(self.fixed_a), self.gen_b2a(self.fixed_b)
            rows = [self.fixed_a, fake_b, self.gen_b2a(fake_b), self.fixed_b, fake_a, self.gen_a2b(fake_a)]
            images = torch.cat(rows).cpu().numpy()  # 6n×3×S×S in [-1, 1]
        return to_uint8(images, (-1.0, 1.0))

    def save_samples(self, run_dir: Path, epoch: int) -> None:
        write_sample_grid(sample_grid_path(run_dir, epoch), self.panel_pixels(), columns=len(self.fixed_a))

    def save_checkpoints(self, folder: Path, epoch: int) -> None:
        from gantool.checkpoint import save_generator

        for direction, generator in zip(DIRECTIONS, (self.gen_a2b, self.gen_b2a)):
            save_generator(generator, self._spec(direction, epoch), checkpoint_in(folder, direction))

    def _spec(self, direction: str, epoch: int) -> ModelSpec:
        import torch

        cfg = self.cfg
        provenance = {
            "gantool_version": __version__, "trained_by": "gantool train cyclegan", "dataset": self.dataset_name,
            "epochs": epoch, "steps": self.steps, "seed": cfg.seed, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "lambda_cycle": cfg.lambda_cycle, "lambda_cycle_b": cfg.lambda_b, "lambda_identity": cfg.lambda_identity,
            "cycle_recolor": cfg.cycle_recolor, "pool_size": cfg.pool_size, "amp": self.amp.mode,
            "world_size": self.world.size,
            "ndf": cfg.ndf, "torch_version": torch.__version__,
            "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }  # fmt: skip
        return ModelSpec(
            kind="cyclegan", arch="resnet", arch_params=cfg.arch_params(), channels=3, height=cfg.size,
            width=cfg.size, value_range=(-1.0, 1.0), direction=direction, domains=self.domains, provenance=provenance,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "cyclegan", "steps": self.steps, "config": asdict(self.cfg), "sums": self.sums,
            "gen_a2b": self.gen_a2b.state_dict(), "gen_b2a": self.gen_b2a.state_dict(),
            "disc_a": self.disc_a.state_dict(), "disc_b": self.disc_b.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
            "pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict(),
            "rng": rng_states(self.noise, self.device), "amp": self.amp.state_dict(),
        }  # fmt: skip

    def rank_state(self) -> dict[str, Any]:
        return {"rng": rng_states(self.noise, self.device), "pool_a": self.pool_a.state_dict(),
                "pool_b": self.pool_b.state_dict()}  # fmt: skip

    def load_rank_state(self, state: dict[str, Any]) -> None:
        restore_rng_states(state["rng"], self.noise, self.device)
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a save point. A state of another model is refused in one line."""
        try:
            for name in ("gen_a2b", "gen_b2a", "disc_a", "disc_b", "opt_g", "opt_d", "sched_g", "sched_d"):
                getattr(self, name).load_state_dict(state[name])
            self.pool_a.load_state_dict(state["pool_a"], self.device)
            self.pool_b.load_state_dict(state["pool_b"], self.device)
            restore_rng_states(state["rng"], self.noise, self.device)
            self.amp.load_state_dict(state.get("amp", {}))
            self.steps, epoch = int(state["steps"]), int(state["epoch"])
            if "sums" in state:  # version 1 states were saved at epoch ends only, with nothing summed yet
                self.sums = state["sums"].to(self.device).reshape(len(LOSSES))
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArtifactError(f"training state does not fit this CycleGAN ({first})") from None
        for optimizer in (self.opt_g, self.opt_d):  # the schedule as this run's --epochs/--epochs-decay set it
            for group in optimizer.param_groups:
                group["lr"] = self.cfg.lr * lr_factor(epoch, self.cfg.epochs, self.cfg.epochs_decay)


def recolor(images: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """N×C×H×W images with each image's channels in a random order and each channel's sign flipped at random.

    Drawn from ``noise`` (the run's CPU stream, saved in the training state), so a
    resumed run draws what an uninterrupted one would. A permutation and a sign
    flip keep every value's size, so the gradient reaching G_A is only re-routed.
    """
    import torch

    count, channels = images.shape[:2]
    order = torch.argsort(torch.rand(count, channels, generator=noise), dim=1).to(images.device)
    signs = torch.randint(0, 2, (count, channels, 1, 1), generator=noise).to(images) * 2 - 1
    return torch.gather(images, 1, order[:, :, None, None].expand_as(images)) * signs


def _lsgan(logits: torch.Tensor, target: float) -> torch.Tensor:
    """LSGAN's least-squares loss: mean (logit − target)² over every patch of the map, in FP32 under autocast."""
    return (logits.float() - target).square().mean()


def _l1(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |images − target|, in FP32 whatever precision autocast computed ``images`` in."""
    import torch.nn.functional as F

    return F.l1_loss(images.float(), target.float())


def _discriminator_loss(
    discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """½[(D(real) − 1)² + D(fake)²]: halved, as the reference does, to slow D relative to G."""
    return 0.5 * (_lsgan(discriminator(real), 1.0) + _lsgan(discriminator(fake.detach()), 0.0))


def train_cyclegan(
    cfg: CycleGanConfig, run_dir: Path, *, device: str, force: bool, state: dict[str, Any] | None, resume_command: str,
    observers: Sequence[EpochObserver] = (),
) -> dict[str, Any]:  # fmt: skip
    """Load both domains, build or restore the trainer, then train to ``cfg.total_epochs``; returns the last metrics.

    Everything that can refuse the job (device, data, batch size, state)
    happens before the first write to ``run_dir``.
    """
    where = resolve_device(device)
    a, b, domains, dataset_name, augment = load_unpaired(cfg.dataset, cfg.size)
    ranks = launched_world_size()
    if cfg.batch_size * ranks > max(len(a), len(b)):
        per_rank = f" × {ranks} processes" if ranks > 1 else ""
        raise UsageError(
            f"--batch-size {cfg.batch_size}{per_rank} is larger than both domains ({len(a)} and {len(b)} images)"
        )
    with joined(where) as world:
        trainer = CycleGanTrainer(cfg, UnpairedBatches(a, b, cfg.size, augment, where), domains, dataset_name, world)
        options = {"command": "gantool train cyclegan", **asdict(cfg), "device": str(where)}
        options |= {"images_a": len(a), "images_b": len(b), "domains": list(domains)}
        options |= {"global_batch_size": cfg.batch_size * world.size}
        options |= {"amp_resolved": trainer.amp.mode, "channels_last": trainer.channels_last}
        summary = job_summary(world, where, cfg.batch_size, describe(trainer.amp.mode, cfg.amp, where))
        saving = Saving(cfg.save_every, cfg.keep, resume_command)
        return start_training(
            trainer, run_dir, state, force, options, cfg.total_epochs, saving, observers, world, summary
        )
