"""Training the vanilla GAN (Goodfellow et al. 2014): k discriminator steps per generator step.

The discriminator minimises BCE(D(x), 1) + BCE(D(G(z)), 0). The generator
either minimises BCE(D(G(z)), 1), the non-saturating loss that still gives a
gradient while D wins early on, or the paper's minimax objective
log(1 - D(G(z))) = -BCE(D(G(z)), 0), kept for comparison.

The checkpoint and the sample grids hold an exponential moving average of the
generator's weights (Yazıcı et al. 2019, "The Unusual Effectiveness of
Averaging in GAN Training"): on the bundled digits it turns the speckled
samples of a few thousand steps into clean strokes, at no training cost.
``--ema 0`` keeps the raw generator instead.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool import __version__
from gantool.artifacts import checkpoint_in
from gantool.errors import ArtifactError, UsageError
from gantool.spec import ModelSpec
from gantool.training.config import GanConfig
from gantool.training.datasets import load_gan_images, skipped_warning
from gantool.training.distributed import World, job_summary, joined, launched_rank, launched_world_size, per_rank_seed
from gantool.training.loop import (
    NOISE_STREAM,
    Saving,
    epoch_batches,
    resolve_device,
    start_training,
    sub_seed,
)
from gantool.training.precision import MixedPrecision, describe, resolve_amp, use_channels_last
from gantool.training.run_dir import sample_grid_path, write_sample_grid
from gantool.training.state import restore_rng_states, rng_states

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy as np
    import torch
    from torch import nn

    from gantool.training.observers import EpochObserver

DROPOUT_STREAM = 2  # ranks after the first reseed their dropout masks from this stream (see distributed.py)
GRID_SAMPLES = 64  # the grid shows samples 0..63 of --seed, as `gantool generate --seed` numbers them
ADAM_BETAS = (0.5, 0.999)  # DCGAN's momentum, which keeps the two players from oscillating


class GanTrainer:
    """Both networks, their Adam optimizers and the noise stream; one D step per batch, one G step per k.

    In a world of many ranks each holds a replica of both networks and trains on
    its share of every global batch. The noise stream is the same on every rank:
    each draws the global batch's latents and keeps its own rows. Dropout masks
    come from each rank's own stream.
    """

    def __init__(
        self, cfg: GanConfig, spec: ModelSpec, data: torch.Tensor, dataset_name: str, world: World | None = None
    ) -> None:
        import torch

        from gantool.latents import latent_batch
        from gantool.models import build_discriminator, build_generator, init_dcgan_weights
        from gantool.training.model_size import refuse_oversized

        self.cfg, self.spec, self.data, self.dataset_name = cfg, spec, data, dataset_name
        self.world = world or World()
        self.device = data.device
        refuse_oversized(lambda: (build_generator(spec), build_discriminator(spec)), "--hidden or --image-size")
        torch.manual_seed(cfg.seed)  # initial weights and dropout masks follow --seed
        self.generator = build_generator(spec).to(self.device)
        self.discriminator = build_discriminator(spec, cfg.dropout, cfg.minibatch_std).to(self.device)
        if spec.arch == "dcgan":
            self.generator.apply(init_dcgan_weights)
            self.discriminator.apply(init_dcgan_weights)
        if self.world.rank > 0:  # the same initial weights everywhere (DDP checks), other dropout masks
            torch.manual_seed(per_rank_seed(cfg.seed, self.world.rank, DROPOUT_STREAM) % 2**63)
        convolutional = spec.arch == "dcgan"
        self.channels_last = convolutional and use_channels_last([self.generator, self.discriminator], self.device)
        self.train_g, self.train_d = self.world.parallel(self.generator), self.world.parallel(self.discriminator)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=ADAM_BETAS)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr, betas=ADAM_BETAS)
        self.amp = MixedPrecision(resolve_amp(cfg.amp, self.device), self.device, {"g": self.opt_g, "d": self.opt_d})
        # The averaged generator starts as a copy; it never trains, it only follows (see _update_average).
        self.average = copy.deepcopy(self.generator).requires_grad_(False) if cfg.ema > 0 else None
        self.noise = torch.Generator().manual_seed(sub_seed(cfg.seed, NOISE_STREAM))  # on the CPU: same on any device
        fixed = latent_batch(cfg.seed, 0, GRID_SAMPLES, cfg.latent_dim)
        self.fixed_latents = torch.from_numpy(fixed).to(self.device)
        self.steps = 0  # generator steps so far
        self.steps_per_epoch = len(data) // self.world.size // cfg.batch_size  # discriminator batches per epoch
        self.bce = torch.nn.BCEWithLogitsLoss()
        self._clear_sums()

    def _clear_sums(self) -> None:
        """The running sums of the epoch's metrics: [loss_d, D(x), D(G(z))] over D steps, loss_g over G steps."""
        import torch

        self.d_sums, self.g_sum = torch.zeros(3, device=self.device), torch.zeros((), device=self.device)
        self.d_count = self.g_count = 0

    def _latents(self, count: int) -> torch.Tensor:
        """This rank's ``count`` rows of the global batch's latents (world size × count × Z, drawn on every rank)."""
        import torch

        drawn = torch.randn(count * self.world.size, self.cfg.latent_dim, generator=self.noise)
        return self.world.share(drawn).to(self.device)  # N×Z

    def d_step(self, real: torch.Tensor) -> torch.Tensor:
        """One discriminator update; returns [loss, mean D(x), mean D(G(z))] measured before it."""
        import torch

        with torch.no_grad(), self.amp.autocast():
            fake = self.train_g(self._latents(len(real)))  # N×C×H×W, detached: no gradient into G
        with self.amp.autocast():
            real_logits, fake_logits = self.train_d(real).float(), self.train_d(fake).float()  # N each, FP32
        ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
        loss = self.bce(real_logits, ones) + self.bce(fake_logits, zeros)  # BCE with logits: no sigmoid to saturate
        self.amp.step("d", loss)
        return torch.stack([loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]).detach()

    def g_step(self) -> torch.Tensor:
        """One generator update through a frozen discriminator; returns the generator loss."""
        import torch

        self.discriminator.requires_grad_(False)  # no weight gradients for D, so none for DDP to all-reduce
        with self.amp.autocast():
            logits = self.train_d(self.train_g(self._latents(self.cfg.batch_size))).float()  # N, FP32
        if self.cfg.loss == "nonsaturating":
            loss = self.bce(logits, torch.ones_like(logits))  # -log D(G(z))
        else:
            loss = -self.bce(logits, torch.zeros_like(logits))  # log(1 - D(G(z)))
        self.amp.step("g", loss)
        self.discriminator.requires_grad_(True)
        self.steps += 1
        self._update_average()
        return loss.detach()

    def _update_average(self) -> None:
        """average ← decay·average + (1-decay)·generator; a short warm-up lets young runs show progress."""
        import torch

        if self.average is None:
            return
        decay = min(self.cfg.ema, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            for mean, weight in zip(self.average.parameters(), self.generator.parameters()):
                mean.lerp_(weight, 1 - decay)
            for mean, buffer in zip(self.average.buffers(), self.generator.buffers()):
                mean.copy_(buffer)  # BatchNorm statistics are taken as they are, as in ProGAN/StyleGAN

    @property
    def published(self) -> torch.nn.Module:
        """The generator that grids and checkpoints show: the average if there is one."""
        return self.average if self.average is not None else self.generator

    def batches(self, epoch: int, start: int) -> Iterator[torch.Tensor]:
        import torch

        batches = epoch_batches(self.data, self.cfg.batch_size, self.cfg.seed, epoch, start, self.world)
        if not self.channels_last:
            return batches
        return (batch.contiguous(memory_format=torch.channels_last) for batch in batches)

    def train_step(self, index: int, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """A discriminator step on the epoch's ``index``-th batch, and a generator step on every k-th."""
        values = dict(zip(("loss_d", "d_real", "d_fake"), self.d_step(real)))
        if index % self.cfg.d_steps == 0:
            values["loss_g"] = self.g_step()
        return values

    def record(self, values: dict[str, torch.Tensor]) -> None:
        import torch

        self.d_sums += torch.stack([values["loss_d"], values["d_real"], values["d_fake"]])
        self.d_count += 1
        if "loss_g" in values:
            self.g_sum += values["loss_g"]
            self.g_count += 1

    def end_epoch(self) -> dict[str, float]:
        loss_d, d_real, d_fake = (self.d_sums / self.d_count).tolist()
        loss_g = (self.g_sum / self.g_count).item()
        self._clear_sums()
        means = {"loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake}
        return {"steps": self.steps, **{key: round(value, 5) for key, value in means.items()}}

    def networks(self) -> list[nn.Module]:
        return [self.generator, self.discriminator, *([self.average] if self.average is not None else [])]

    def sample_pixels(self) -> np.ndarray:
        """The fixed-noise samples as uint8 N×H×W×C, in eval mode as `gantool generate` runs the checkpoint."""
        import torch

        from gantool.images import to_uint8

        generator = self.published.eval()
        with torch.no_grad():
            images = generator(self.fixed_latents).cpu().numpy()  # N×C×H×W in [-1, 1]
        generator.train()
        return to_uint8(images, self.spec.value_range)

    def save_samples(self, run_dir: Path, epoch: int) -> None:
        write_sample_grid(sample_grid_path(run_dir, epoch), self.sample_pixels())

    def save_checkpoints(self, folder: Path, epoch: int) -> None:
        from gantool.checkpoint import save_generator

        save_generator(self.published, self._spec_after(epoch), checkpoint_in(folder))

    def _spec_after(self, epoch: int) -> ModelSpec:
        import torch

        provenance = {
            "gantool_version": __version__,
            "trained_by": "gantool train gan",
            "dataset": self.dataset_name,
            "epochs": epoch,
            "steps": self.steps,
            "seed": self.cfg.seed,
            "loss": self.cfg.loss,
            "d_steps": self.cfg.d_steps,
            "batch_size": self.cfg.batch_size,
            "lr": self.cfg.lr,
            "ema": self.cfg.ema,
            "dropout": self.cfg.dropout,
            "minibatch_std": self.cfg.minibatch_std,
            "amp": self.amp.mode,
            "world_size": self.world.size,
            "torch_version": torch.__version__,
            "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return ModelSpec(**{**asdict(self.spec), "provenance": provenance})

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "gan",
            "steps": self.steps,
            "config": asdict(self.cfg),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": rng_states(self.noise, self.device),
            "amp": self.amp.state_dict(),
            "sums": {"d": self.d_sums, "g": self.g_sum, "d_count": self.d_count, "g_count": self.g_count},
            **({"average": self.average.state_dict()} if self.average is not None else {}),
        }

    def rank_state(self) -> dict[str, Any]:
        return {"rng": rng_states(self.noise, self.device)}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        restore_rng_states(state["rng"], self.noise, self.device)

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a save point. A state of another model is refused in one line."""
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.average is not None:
                self.average.load_state_dict(state["average"])
            restore_rng_states(state["rng"], self.noise, self.device)
            self.amp.load_state_dict(state.get("amp", {}))
            self.steps = int(state["steps"])
            if "sums" in state:  # version 1 states were saved at epoch ends only, with nothing summed yet
                sums = state["sums"]
                self.d_sums, self.g_sum = sums["d"].to(self.device), sums["g"].to(self.device)
                self.d_count, self.g_count = int(sums["d_count"]), int(sums["g_count"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArtifactError(f"training state does not fit this GAN ({first})") from None


def check_geometry(cfg: GanConfig) -> None:
    """Refuse an image size the DCGAN stack cannot produce, before any image is read."""
    from gantool.models import check_dcgan_geometry

    if cfg.arch == "dcgan":
        try:
            check_dcgan_geometry(cfg.image_size, cfg.image_size)
        except ValueError as exc:
            raise UsageError(f"{exc}: pick another --image-size") from None


def gan_spec(cfg: GanConfig, pixels: np.ndarray) -> ModelSpec:
    """The generator's spec for images shaped like ``pixels`` (N×H×W×C)."""
    _, height, width, channels = pixels.shape
    return ModelSpec(
        kind="gan", arch=cfg.arch, arch_params=cfg.arch_params(), channels=channels,
        height=height, width=width, latent_dim=cfg.latent_dim, value_range=(-1.0, 1.0),
    )  # fmt: skip


def train_gan(
    cfg: GanConfig, run_dir: Path, *, data_dir: Path, download: bool, device: str, force: bool,
    state: dict[str, Any] | None, resume_command: str, observers: Sequence[EpochObserver] = (),
) -> dict[str, Any]:  # fmt: skip
    """Load the data, build or restore the trainer, then train to ``cfg.epochs``; returns the last metrics.

    Everything that can refuse the job (device, data, geometry, batch size,
    state) happens before the first write to ``run_dir``.
    """
    import torch

    from gantool.data import pixels_to_unit

    where = resolve_device(device)
    check_geometry(cfg)
    world_size = launched_world_size()
    pixels, dataset_name, skipped = load_gan_images(cfg.dataset, data_dir, download, cfg.image_size)
    if skipped and launched_rank() == 0:
        print(skipped_warning(cfg.dataset, skipped), file=sys.stderr)
    spec = gan_spec(cfg, pixels)
    share = len(pixels) // world_size  # each rank's images per epoch
    if cfg.batch_size > share:
        per_rank = f" per process ({world_size} share {len(pixels)} images)" if world_size > 1 else ""
        raise UsageError(f"--batch-size {cfg.batch_size} is larger than the dataset{per_rank} ({share} images)")
    batches = share // cfg.batch_size
    if batches < cfg.d_steps:
        raise UsageError(f"--d-steps {cfg.d_steps} needs that many batches per epoch; the dataset gives {batches}")
    data = torch.from_numpy(pixels_to_unit(pixels)).to(where)  # N×C×H×W in [-1, 1], held whole on the device
    with joined(where) as world:
        trainer = GanTrainer(cfg, spec, data, dataset_name, world)
        options = {"command": "gantool train gan", **asdict(cfg), "data_dir": str(data_dir), "download": download}
        options |= {"device": str(where), "images": len(pixels), "global_batch_size": cfg.batch_size * world.size}
        options |= {"amp_resolved": trainer.amp.mode, "channels_last": trainer.channels_last}
        summary = job_summary(world, where, cfg.batch_size, describe(trainer.amp.mode, cfg.amp, where))
        saving = Saving(cfg.save_every, cfg.keep, resume_command)
        return start_training(trainer, run_dir, state, force, options, cfg.epochs, saving, observers, world, summary)
