"""The options that define a training run, torch-free so the CLI can show their defaults without importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from gantool.errors import ArtifactError, UsageError

BUILTIN_DATASETS = ("digits", "mnist")
# Chosen with `gantool eval` (benchmarks/RESULTS.md, "Making the defaults as good as their data"): in the three
# minutes the seed notes' z → 256 → 512 → 1024 net took for 100 epochs of batch 32 on two CPU cores, a net of
# half the width trains 3.5× the epochs at batch 64 and lr 4e-4, and its samples score far closer to the real
# digits. The epochs are per dataset: 350 of the bundled 1,797 digits, 100 of MNIST's 60,000 or of a folder.
GAN_EPOCHS = {"digits": 350, "other": 100}
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 4e-4
DEFAULT_HIDDEN = (128, 256, 512)  # z → 128 → 256 → 512 → image
CYCLEGAN_LR = 2e-4  # the reference's
DEFAULT_NGF = 64
DEFAULT_EMA = 0.999
# The MLP discriminator's dropout: the seed notes' 0.3 kept every class but fell short on confidence; 0.2 reaches it,
# and the minibatch std feature keeps every class (benchmarks/RESULTS.md, "Making the defaults as good as their data").
DEFAULT_DROPOUT = 0.2
DEFAULT_KEEP = 3  # periodic checkpoints kept with --save-every
# What --resume may change: how long to train, where the data now lives, how often to save and the
# precision the device trains in; the rest defines the run.
RESUMABLE_CHANGES = ("epochs", "dataset", "save_every", "keep", "amp")
# Options added after runs were already saved: a saved config without one trained as this value says.
ADDED_LATER: dict[str, Any] = {"minibatch_std": False}


@dataclass
class GanConfig:
    """A GAN run's options; saved in run.json and in the training state, restored by --resume."""

    dataset: str = "digits"
    image_size: int = 28
    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: list(DEFAULT_HIDDEN))
    ngf: int = DEFAULT_NGF
    latent_dim: int = 100
    epochs: int = GAN_EPOCHS["digits"]
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    loss: str = "nonsaturating"
    d_steps: int = 1
    ema: float = DEFAULT_EMA
    dropout: float = DEFAULT_DROPOUT  # the MLP discriminator's; 0 makes N processes match one exactly
    minibatch_std: bool = True  # the MLP discriminator sees each batch's spread (ProGAN's minibatch std)
    amp: str = "auto"  # mixed precision: auto, bf16, fp16 or off (training/precision.py)
    seed: int = 0
    save_every: int | None = None  # steps between periodic checkpoints (None: epoch ends and interrupts only)
    keep: int = DEFAULT_KEEP

    def arch_params(self) -> dict[str, Any]:
        """The spec's arch_params: only the architecture's own hyper-parameter."""
        return {"hidden": list(self.hidden)} if self.arch == "mlp" else {"ngf": self.ngf}


def gan_epochs(dataset: str) -> int:
    """The GAN's default epochs for ``dataset``: more passes over the small bundled digits than over MNIST or a folder."""
    return GAN_EPOCHS["digits" if dataset == "digits" else "other"]


Config = TypeVar("Config", "GanConfig", "CycleGanConfig")


def resolve_resumed_config(
    cfg: Config, saved: dict[str, Any], explicit: set[str], resumable: tuple[str, ...] = RESUMABLE_CHANGES
) -> Config:
    """The saved run's options, with the command line's only where it may change them (``resumable``).

    A resumed run must train the same model the same way; an explicit option
    that would change that is refused rather than silently ignored.
    """
    given = asdict(cfg)
    merged = {**{name: value for name, value in ADDED_LATER.items() if name in given}, **saved}
    for name in sorted(explicit & set(given)):
        if name in resumable:
            merged[name] = given[name]
        elif given[name] != merged.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"--resume keeps the run's settings: {flag} {_show(given[name])} differs from its {_show(merged.get(name))}"
            )
    try:
        return type(cfg)(**merged)
    except TypeError as exc:
        raise ArtifactError(f"training state holds options this gantool does not know ({exc})") from None


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


DIGITS_M = "digits-m"
CYCLEGAN_MIN_SIZE = 24  # the 70×70 PatchGAN's five 4×4 convs leave no logit below 24×24
# Per dataset, what an option left out means. digits-m: small enough to learn the digits in a few minutes on
# two CPU cores; a folder: the reference's 256² ResNet-9 setup (Zhu et al. 2017), which wants a GPU.
CYCLEGAN_DEFAULTS: dict[str, dict[str, int]] = {
    DIGITS_M: {"size": 32, "ngf": 16, "ndf": 32, "blocks": 6, "epochs": 12, "epochs_decay": 8, "batch_size": 16},
    "folder": {"size": 256, "ngf": 64, "ndf": 64, "blocks": 9, "epochs": 100, "epochs_decay": 100, "batch_size": 1},
}
# The loss recipe per dataset. A folder: the reference's. digits-m: no B→A→B cycle and a recoloured A→B→A
# one at three times the weight, which `gantool eval` found to keep the digit B→A 90% of the time (over two
# seeds) where the reference's recipe keeps it 52% (benchmarks/RESULTS.md, "Making the defaults as good as
# their data").
CYCLEGAN_RECIPES: dict[str, dict[str, float | bool | None]] = {
    DIGITS_M: {"lambda_cycle": 30.0, "lambda_cycle_b": 0.0, "cycle_recolor": True},
    "folder": {"lambda_cycle": 10.0, "lambda_cycle_b": None, "cycle_recolor": False},
}
# --resume may train longer (either phase) or find a moved folder; everything else defines the run.
CYCLEGAN_RESUMABLE = ("epochs", "epochs_decay", "dataset", "save_every", "keep", "amp")


@dataclass
class CycleGanConfig:
    """A CycleGAN run's options; saved in run.json and in the training state, restored by --resume."""

    dataset: str = DIGITS_M
    size: int = CYCLEGAN_DEFAULTS[DIGITS_M]["size"]
    ngf: int = CYCLEGAN_DEFAULTS[DIGITS_M]["ngf"]
    ndf: int = CYCLEGAN_DEFAULTS[DIGITS_M]["ndf"]
    blocks: int = CYCLEGAN_DEFAULTS[DIGITS_M]["blocks"]
    epochs: int = CYCLEGAN_DEFAULTS[DIGITS_M]["epochs"]
    epochs_decay: int = CYCLEGAN_DEFAULTS[DIGITS_M]["epochs_decay"]
    batch_size: int = CYCLEGAN_DEFAULTS[DIGITS_M]["batch_size"]
    lr: float = CYCLEGAN_LR
    lambda_cycle: float = 10.0
    lambda_cycle_b: float | None = None  # the B→A→B cycle's weight (the reference's lambda_B); None: lambda_cycle
    lambda_identity: float = 0.5
    cycle_recolor: bool = False  # the A→B→A cycle reads A→B's output with its channels shuffled and sign-flipped
    pool_size: int = 50
    amp: str = "auto"  # mixed precision: auto, bf16, fp16 or off (training/precision.py)
    seed: int = 0
    save_every: int | None = None
    keep: int = DEFAULT_KEEP

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    @property
    def lambda_b(self) -> float:
        """Weight of the B→A→B cycle."""
        return self.lambda_cycle if self.lambda_cycle_b is None else self.lambda_cycle_b

    def arch_params(self) -> dict[str, Any]:
        """The translators' spec arch_params (the discriminator width stays in provenance)."""
        return {"ngf": self.ngf, "blocks": self.blocks}


def cyclegan_config(dataset: str, **options: Any) -> CycleGanConfig:
    """A config for ``dataset`` where every option given as None takes that dataset's default; sizes checked."""
    kind = DIGITS_M if dataset == DIGITS_M else "folder"
    defaults = {**CYCLEGAN_DEFAULTS[kind], **CYCLEGAN_RECIPES[kind]}
    resolved = {
        name: defaults[name] if value is None and name in defaults else value for name, value in options.items()
    }
    cfg = CycleGanConfig(dataset=dataset, **{name: value for name, value in resolved.items() if value is not None})
    check_cyclegan_size(cfg.size)
    return cfg


def check_cyclegan_size(size: int) -> None:
    """The translator halves the image twice and the PatchGAN needs room for one logit: refuse other sizes."""
    if size % 4 or size < CYCLEGAN_MIN_SIZE:
        raise UsageError(f"--size {size}: the CycleGAN needs a multiple of 4 of at least {CYCLEGAN_MIN_SIZE}")
