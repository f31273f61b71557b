"""The options that define a GAN run, torch-free so the CLI can show their defaults without importing torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gantool.errors import ArtifactError, UsageError

BUILTIN_DATASETS = ("digits", "mnist")
# Tuned so the default command gives readable digits in about three minutes on two CPU cores.
DEFAULT_EPOCHS = 100
DEFAULT_BATCH_SIZE = 32
DEFAULT_LR = 2e-4
DEFAULT_HIDDEN = (256, 512, 1024)  # gantool.models.DEFAULT_MLP_HIDDEN, without importing torch
DEFAULT_NGF = 64
DEFAULT_EMA = 0.999
# What --resume may change: how long to train and where the data now lives; the rest defines the run.
RESUMABLE_CHANGES = ("epochs", "dataset")


@dataclass
class GanConfig:
    """A GAN run's options; saved in run.json and in the training state, restored by --resume."""

    dataset: str = "digits"
    image_size: int = 28
    arch: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: list(DEFAULT_HIDDEN))
    ngf: int = DEFAULT_NGF
    latent_dim: int = 100
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    loss: str = "nonsaturating"
    d_steps: int = 1
    ema: float = DEFAULT_EMA
    seed: int = 0

    def arch_params(self) -> dict[str, Any]:
        """The spec's arch_params: only the architecture's own hyper-parameter."""
        return {"hidden": list(self.hidden)} if self.arch == "mlp" else {"ngf": self.ngf}


def resolve_resumed_config(cfg: GanConfig, saved: dict[str, Any], explicit: set[str]) -> GanConfig:
    """The saved run's options, with the command line's only where it may change them.

    A resumed run must train the same model the same way; an explicit option
    that would change that is refused rather than silently ignored.
    """
    merged = dict(saved)
    given = asdict(cfg)
    for name in sorted(explicit & set(given)):
        if name in RESUMABLE_CHANGES:
            merged[name] = given[name]
        elif given[name] != saved.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"--resume keeps the run's settings: {flag} {_show(given[name])} differs from its {_show(saved.get(name))}"
            )
    try:
        return GanConfig(**merged)
    except TypeError as exc:
        raise ArtifactError(f"training state holds options this gantool does not know ({exc})") from None


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
