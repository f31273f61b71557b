"""``gantool train``: one command per model family, sharing the run-folder conventions.

Only typer and the standard library are imported here at module level; torch
comes in when a command runs, so ``gantool --help`` stays fast.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from gantool.errors import UsageError
from gantool.latents import MAX_SEED
from gantool.training.cli_options import (
    Amp,
    AmpOption,
    Device,
    DeviceOption,
    EvalEveryOption,
    EvalSamplesOption,
    ForceOption,
    KeepOption,
    NnodesOption,
    NodeRankOption,
    NprocOption,
    RdzvEndpointOption,
    ResumeOption,
    SaveEveryOption,
    TensorBoardOption,
)
from gantool.training.config import (
    BUILTIN_DATASETS,
    CYCLEGAN_DEFAULTS,
    CYCLEGAN_RESUMABLE,
    DIGITS_M,
    GAN_EPOCHS,
    CycleGanConfig,
    GanConfig,
    cyclegan_config,
    gan_epochs,
    resolve_resumed_config,
)
from gantool.training.distributed import launched_rank
from gantool.training.launch import resume_command_for

DEFAULTS = GanConfig()

train_app = typer.Typer(
    help="Train a model into a run folder (checkpoint, samples, metrics, resumable state).",
    no_args_is_help=True,
)


class Arch(str, Enum):
    mlp = "mlp"
    dcgan = "dcgan"


class Loss(str, Enum):
    nonsaturating = "nonsaturating"
    minimax = "minimax"


DEFAULT_ARCH, DEFAULT_LOSS = Arch(DEFAULTS.arch), Loss(DEFAULTS.loss)


def _positive_lr(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} is not a positive learning rate")
    return value


def _decay(value: float) -> float:
    if not 0 <= value < 1:
        raise typer.BadParameter(f"{value} is not a decay in [0, 1)")
    return value


def _hidden_widths(value: str) -> list[int]:
    """``256,512,1024`` → [256, 512, 1024]: the MLP's layer widths, generator side."""
    try:
        widths = [int(part) for part in value.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a comma-separated list of widths such as 256,512,1024") from None
    if not 1 <= len(widths) <= 8 or not all(1 <= width <= 16384 for width in widths):
        raise typer.BadParameter(f"{value!r}: give 1 to 8 widths, each between 1 and 16384")
    return widths


@train_app.command("gan")
def gan(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create (or continue, with --resume).")],
    dataset: Annotated[
        str, typer.Option(help="'digits' (bundled, offline), 'mnist' (IDX files in --data-dir) or a folder of images.")
    ] = DEFAULTS.dataset,
    data_dir: Annotated[Path, typer.Option(help="Folder holding MNIST's train-images-idx3-ubyte[.gz].")] = Path("data"),
    download: Annotated[
        bool, typer.Option("--download", help="Fetch MNIST into --data-dir if it is not there.")
    ] = False,
    image_size: Annotated[
        int, typer.Option(min=4, max=1024, help="Side that folder images are cropped and resized to.")
    ] = DEFAULTS.image_size,
    arch: Annotated[Arch, typer.Option(help="mlp: Goodfellow et al.'s MLPs; dcgan: conv nets.")] = DEFAULT_ARCH,
    hidden: Annotated[
        str, typer.Option(help="MLP widths, generator order (the discriminator mirrors them).")
    ] = ",".join(map(str, DEFAULTS.hidden)),
    ngf: Annotated[
        int, typer.Option(min=1, max=1024, help="DCGAN base feature width of both networks.")
    ] = DEFAULTS.ngf,
    latent_dim: Annotated[int, typer.Option(min=1, max=4096, help="Size of the noise vector z.")] = DEFAULTS.latent_dim,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Total epochs (with --resume: train until this many). Default: {digits} on digits, {other} on MNIST "
            "or a folder.".format(**GAN_EPOCHS),
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per batch.")] = DEFAULTS.batch_size,
    lr: Annotated[
        float, typer.Option(callback=_positive_lr, help="Adam learning rate of both networks.")
    ] = DEFAULTS.lr,
    loss: Annotated[
        Loss, typer.Option(help="Generator loss: nonsaturating (max log D(G(z))) or the paper's minimax.")
    ] = DEFAULT_LOSS,
    d_steps: Annotated[
        int, typer.Option(min=1, max=100, help="Discriminator steps per generator step (k).")
    ] = DEFAULTS.d_steps,
    ema: Annotated[
        float,
        typer.Option(
            callback=_decay, help="Decay of the generator weight average that checkpoints and grids hold (0: off)."
        ),
    ] = DEFAULTS.ema,
    dropout: Annotated[
        float,
        typer.Option(
            min=0, max=0.9, help="Dropout of the MLP discriminator's hidden layers (each process draws its own masks)."
        ),
    ] = DEFAULTS.dropout,
    minibatch_std: Annotated[
        bool,
        typer.Option(
            "--minibatch-std/--no-minibatch-std",
            help="Show the MLP discriminator each batch's spread (ProGAN's minibatch std), so the generator is paid "
            "to draw every class. Each process takes its own batch's.",
        ),
    ] = DEFAULTS.minibatch_std,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed for weights, shuffling, noise and the sample grid.")
    ] = DEFAULTS.seed,
    save_every: SaveEveryOption = None,
    keep: KeepOption = DEFAULTS.keep,
    eval_every: EvalEveryOption = None,
    eval_samples: EvalSamplesOption = 500,
    tensorboard: TensorBoardOption = False,
    device: DeviceOption = Device.auto,
    amp: AmpOption = Amp.auto,
    resume: ResumeOption = False,
    force: ForceOption = False,
    nproc: NprocOption = None,
    nnodes: NnodesOption = 1,
    node_rank: NodeRankOption = 0,
    rdzv_endpoint: RdzvEndpointOption = None,
) -> None:
    """Train a vanilla GAN (MLP or DCGAN) on digits, MNIST or a folder of images.

    Each epoch writes a sample grid (samples 0-63 of --seed, as 'gantool generate'
    makes them), a line of metrics.jsonl, generator.safetensors and train_state.pt.
    Ctrl-C or SIGTERM stops after the current step, saves, and exits 130 or 143;
    --resume then continues exactly where it stopped.
    """
    from gantool.training.checkpoints import load_resume_state
    from gantool.training.gan import train_gan
    from gantool.training.observers import make_observers
    from gantool.training.run_dir import check_run_dir

    check_run_dir(out, resume, force)
    if nproc is not None or nnodes > 1:
        _launch(ctx, "gan", out, resume, nproc or 1, nnodes, node_rank, rdzv_endpoint)
    cfg = GanConfig(
        dataset=dataset, image_size=image_size, arch=arch.value, hidden=_hidden_widths(hidden), ngf=ngf,
        latent_dim=latent_dim, epochs=epochs or gan_epochs(dataset), batch_size=batch_size, lr=lr, loss=loss.value,
        d_steps=d_steps, ema=ema, dropout=dropout, minibatch_std=minibatch_std, amp=amp.value, seed=seed,
        save_every=save_every, keep=keep,
    )  # fmt: skip
    state = None
    if resume:
        state = load_resume_state(out)
        if state.get("kind") != "gan" or not isinstance(state.get("config"), dict):
            raise UsageError(f"{out} holds the training state of a {state.get('kind')!r} run, not a GAN")
        cfg = resolve_resumed_config(cfg, state["config"], _explicit_options(ctx))
        if state["epoch"] >= cfg.epochs:
            raise UsageError(f"{out} has already trained {state['epoch']} epochs: pass a larger --epochs")
    if cfg.dataset not in BUILTIN_DATASETS:
        cfg.dataset = str(Path(cfg.dataset).resolve())  # a resumed run finds its folder from anywhere
    observers = make_observers(
        out, eval_every=eval_every, eval_samples=eval_samples, tensorboard=tensorboard, state=state,
        last_epoch=cfg.epochs, seed=cfg.seed,
    )  # fmt: skip
    last = train_gan(
        cfg, out, data_dir=data_dir, download=download, device=device.value, force=force, state=state,
        resume_command=resume_command_for("gan", out), observers=observers,
    )  # fmt: skip
    if launched_rank() == 0:  # one line per job, not per process
        typer.echo(
            f"trained {last['epoch']}/{cfg.epochs} epochs ({last['steps']} generator steps): "
            f"loss_d {last['loss_d']:.3f} loss_g {last['loss_g']:.3f} "
            f"D(x) {last['d_real']:.3f} D(G(z)) {last['d_fake']:.3f} -> {out}"
        )


CYCLE_DEFAULTS = CycleGanConfig()


def _per_dataset(name: str) -> str:
    """'Default: 32 on digits-m, 256 on a folder.' for an option whose default depends on --dataset."""
    per_dataset = CYCLEGAN_DEFAULTS[DIGITS_M][name], CYCLEGAN_DEFAULTS["folder"][name]
    return "Default: {} on digits-m, {} on a folder.".format(*per_dataset)


@train_app.command("cyclegan")
def cyclegan(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create (or continue, with --resume).")],
    dataset: Annotated[
        str, typer.Option(help="'digits-m' (bundled, offline) or a folder holding trainA/ and trainB/ images.")
    ] = DIGITS_M,
    size: Annotated[
        int | None,
        typer.Option(max=1024, help=f"Training side, a multiple of 4, at least 24. {_per_dataset('size')}"),
    ] = None,
    blocks: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help=f"Residual blocks per translator (6 or 9 in the paper). {_per_dataset('blocks')}"
        ),
    ] = None,
    ngf: Annotated[
        int | None, typer.Option(min=1, max=1024, help=f"Translator base width. {_per_dataset('ngf')}")
    ] = None,
    ndf: Annotated[
        int | None, typer.Option(min=1, max=1024, help=f"PatchGAN base width. {_per_dataset('ndf')}")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help=f"Epochs at the full learning rate. {_per_dataset('epochs')}")
    ] = None,
    epochs_decay: Annotated[
        int | None,
        typer.Option(min=0, help=f"Epochs after those with the rate falling linearly. {_per_dataset('epochs_decay')}"),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help=f"Images per domain per batch. {_per_dataset('batch_size')}")
    ] = None,
    lr: Annotated[
        float, typer.Option(callback=_positive_lr, help="Adam learning rate of all four networks.")
    ] = CYCLE_DEFAULTS.lr,
    lambda_cycle: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Weight of the cycle losses |G_B(G_A(a)) − a| and |G_A(G_B(b)) − b|. Default: 30 on digits-m, 10 "
            "(the reference's) on a folder.",
            show_default=False,
        ),
    ] = None,
    lambda_cycle_b: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Weight of the B→A→B cycle alone (the reference's --lambda_B). Lower it when B holds detail A "
            "cannot (colour, background) that B→A would otherwise hide in its output. Default: 0 on digits-m, "
            "--lambda-cycle on a folder.",
            show_default=False,
        ),
    ] = None,
    lambda_identity: Annotated[
        float, typer.Option(min=0, help="Identity loss weight, as a fraction of --lambda-cycle (0: off).")
    ] = CYCLE_DEFAULTS.lambda_identity,
    cycle_recolor: Annotated[
        bool | None,
        typer.Option(
            "--cycle-recolor/--no-cycle-recolor",
            help="Shuffle and sign-flip the channels of each A→B output before the A→B→A cycle reads it back, so "
            "B→A learns to find the content whatever its colours. Default: on for digits-m, off for a folder.",
            show_default=False,
        ),
    ] = None,
    pool_size: Annotated[
        int, typer.Option(min=0, max=10000, help="Earlier fakes kept for the discriminators (0: only the newest).")
    ] = CYCLE_DEFAULTS.pool_size,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed for weights, shuffling, augmentation and the image pools.")
    ] = CYCLE_DEFAULTS.seed,
    save_every: SaveEveryOption = None,
    keep: KeepOption = CYCLE_DEFAULTS.keep,
    eval_every: EvalEveryOption = None,
    tensorboard: TensorBoardOption = False,
    device: DeviceOption = Device.auto,
    amp: AmpOption = Amp.auto,
    resume: ResumeOption = False,
    force: ForceOption = False,
    nproc: NprocOption = None,
    nnodes: NnodesOption = 1,
    node_rank: NodeRankOption = 0,
    rdzv_endpoint: RdzvEndpointOption = None,
) -> None:
    """Train a CycleGAN (Zhu et al. 2017): two ResNet translators A→B and B→A from unpaired images.

    Each epoch writes a panel (rows: A, G_A(A), G_B(G_A(A)), B, G_B(B),
    G_A(G_B(B))), a line of metrics.jsonl, generator_a2b.safetensors,
    generator_b2a.safetensors and train_state.pt. Defaults depend on --dataset:
    digits-m trains small in a few minutes on a CPU; a folder gets the paper's
    256² ResNet-9 setup for 100 + 100 epochs, which wants a GPU. Ctrl-C or SIGTERM
    stops after the current step, saves, and exits 130 or 143; --resume then
    continues exactly where it stopped.
    """
    from gantool.training.checkpoints import load_resume_state
    from gantool.training.cyclegan import train_cyclegan
    from gantool.training.observers import make_observers
    from gantool.training.run_dir import check_run_dir

    check_run_dir(out, resume, force)
    if nproc is not None or nnodes > 1:
        _launch(ctx, "cyclegan", out, resume, nproc or 1, nnodes, node_rank, rdzv_endpoint)
    sized = {"size": size, "blocks": blocks, "ngf": ngf, "ndf": ndf, "epochs": epochs, "epochs_decay": epochs_decay}
    cfg = cyclegan_config(
        dataset, **sized, batch_size=batch_size, lr=lr, lambda_cycle=lambda_cycle, lambda_cycle_b=lambda_cycle_b,
        lambda_identity=lambda_identity, cycle_recolor=cycle_recolor,
        pool_size=pool_size, amp=amp.value, seed=seed, save_every=save_every, keep=keep,
    )  # fmt: skip
    state = None
    if resume:
        state = load_resume_state(out)
        if state.get("kind") != "cyclegan" or not isinstance(state.get("config"), dict):
            raise UsageError(f"{out} holds the training state of a {state.get('kind')!r} run, not a CycleGAN")
        cfg = resolve_resumed_config(cfg, state["config"], _explicit_options(ctx), CYCLEGAN_RESUMABLE)
        if state["epoch"] >= cfg.total_epochs:
            raise UsageError(
                f"{out} has already trained {state['epoch']} epochs: pass a larger --epochs or --epochs-decay"
            )
    if cfg.dataset != DIGITS_M:
        cfg.dataset = str(Path(cfg.dataset).resolve())  # a resumed run finds its folder from anywhere
    observers = make_observers(
        out, eval_every=eval_every, eval_samples=0, tensorboard=tensorboard, state=state,
        last_epoch=cfg.total_epochs, seed=cfg.seed,
    )  # fmt: skip
    last = train_cyclegan(
        cfg, out, device=device.value, force=force, state=state, resume_command=resume_command_for("cyclegan", out),
        observers=observers,
    )  # fmt: skip
    if launched_rank() == 0:  # one line per job, not per process
        typer.echo(
            f"trained {last['epoch']}/{cfg.total_epochs} epochs ({last['steps']} steps): "
            f"cycle A {last['loss_cycle_A']:.3f} B {last['loss_cycle_B']:.3f}  "
            f"G_A {last['loss_G_A']:.3f} G_B {last['loss_G_B']:.3f}  D_A {last['loss_D_A']:.3f} D_B {last['loss_D_B']:.3f} "
            f"-> {out}"
        )


def _launch(
    ctx: typer.Context, model: str, out: Path, resume: bool, nproc: int, nnodes: int, node_rank: int,
    endpoint: str | None,
) -> NoReturn:  # fmt: skip
    """Run this command over ``nproc`` × ``nnodes`` processes, then leave with the job's exit status."""
    from gantool.training.launch import launch_job

    argv = (ctx.find_root().obj or {}).get("argv", sys.argv[1:])
    raise typer.Exit(launch_job(argv, model, out, resume, nproc, nnodes, node_rank, endpoint))


def _explicit_options(ctx: typer.Context) -> set[str]:
    """Options the user typed (or set in the environment), as opposed to defaults.

    Compared by name: typer vendors its own click, whose ParameterSource is not click's.
    """
    typed = ("COMMANDLINE", "ENVIRONMENT")
    sources = {param.name: ctx.get_parameter_source(param.name) for param in ctx.command.params if param.name}
    return {name for name, source in sources.items() if source is not None and source.name in typed}
