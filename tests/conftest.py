"""Shared fixtures: tiny models built in a second, and a CLI runner that keeps stderr apart.

Nothing here trains for long or touches the network: a tiny MLP generator is
enough to exercise checkpoints, export, backends and the CLI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from gantool.runtime.backends.base import Backend
from gantool.spec import ModelSpec


def tiny_gan_spec(arch: str = "mlp") -> ModelSpec:
    """A 1×8×8 MLP (or 1×28×28 DCGAN) generator with a latent of 8: milliseconds per batch."""
    if arch == "dcgan":
        return ModelSpec(
            kind="gan", arch="dcgan", arch_params={"ngf": 4}, channels=1, height=28, width=28, latent_dim=8
        )
    return ModelSpec(
        kind="gan", arch="mlp", arch_params={"hidden": [16, 32]}, channels=1, height=8, width=8, latent_dim=8
    )


def make_checkpoint(run_dir: Path, arch: str = "mlp", seed: int = 0) -> Path:
    """Write a randomly initialised generator checkpoint into ``run_dir`` and return its path."""
    import torch

    from gantool.artifacts import checkpoint_in
    from gantool.checkpoint import save_generator
    from gantool.models import build_generator

    spec = tiny_gan_spec(arch)
    torch.manual_seed(seed)
    module = build_generator(spec).eval()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_in(run_dir)
    save_generator(module, spec, path)
    return path


def tiny_translator_spec(direction: str = "a2b", size: int = 16) -> ModelSpec:
    """A CycleGAN ResNet translator small enough for tests: ngf 4, one residual block, 3×16×16 native."""
    return ModelSpec(
        kind="cyclegan", arch="resnet", arch_params={"ngf": 4, "blocks": 1}, channels=3, height=size, width=size,
        direction=direction, domains=("digits", "colour"),
    )  # fmt: skip


def make_translator_run(run_dir: Path, seed: int = 0) -> Path:
    """A run dir with both tiny translators (generator_a2b / generator_b2a.safetensors), randomly initialised."""
    import torch

    from gantool.artifacts import DIRECTIONS, checkpoint_in
    from gantool.checkpoint import save_generator
    from gantool.models import build_generator

    run_dir.mkdir(parents=True, exist_ok=True)
    for offset, direction in enumerate(DIRECTIONS):
        spec = tiny_translator_spec(direction)
        torch.manual_seed(seed + offset)
        save_generator(build_generator(spec).eval(), spec, checkpoint_in(run_dir, direction))
    return run_dir


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty gantool cache (measured ``auto`` figures): none ever reads or writes ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GANTOOL_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A run dir holding only a tiny MLP generator checkpoint; returns the checkpoint path."""
    return make_checkpoint(tmp_path / "run")


def run_cli(*args: str | Path) -> Result:
    """Run ``gantool ARGS...`` in-process; the result has .exit_code, .stdout and .stderr."""
    from gantool.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def cli():
    """``run_cli`` as a fixture: ``cli("train", "gan", ...)``."""
    return run_cli


class NotInstalledBackend(Backend):
    """A registered backend whose engine is missing: it must be reported, never loaded."""

    name = "missing"
    requires = ("gantool_no_such_engine",)
    install_hint = "pip install gantool-no-such-engine"

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        return model

    def _load(self, artifact: Path) -> ModelSpec:
        raise AssertionError("never reached: availability is checked first")

    def run(self, batch: np.ndarray) -> np.ndarray:
        raise AssertionError("never reached")
