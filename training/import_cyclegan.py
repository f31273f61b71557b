"""Import a ResNet generator saved by pytorch-CycleGAN-and-pix2pix as a gantool checkpoint.

That repository saves each generator as a plain pickled state dict
(``latest_net_G_A.pth``, ``latest_net_G_B.pth``; its pretrained downloads are
one ``latest_net_G.pth``). gantool's ResnetGenerator keeps its module layout
(``model.N``, ``model.N.conv_block.M``), so importing is a matter of reading
the file safely, normalising the few key variants found in the wild and
refusing anything else with the exact keys that do not fit:

- ``module.`` prefixes, from a network saved while wrapped in DataParallel;
- ``running_mean`` / ``running_var`` / ``num_batches_tracked`` on InstanceNorm
  layers, from PyTorch < 0.4 (and early 0.4) files: InstanceNorm then
  normalised with each image's own statistics anyway, so they are dropped;
- residual blocks trained with dropout (``conv_block.6`` instead of
  ``conv_block.5``): dropout is the identity at inference, so the weights are
  renumbered onto the dropout-free layout.

The file is read with ``torch.load(weights_only=True)``: a pickle that carries
code is refused, never run. The checkpoint is written next to a parity check:
the written file is reloaded and must reproduce the network built from the
original weights (max abs difference ≤ 1e-5) before it is renamed into place.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool import __version__
from gantool.artifacts import checkpoint_in
from gantool.errors import ArtifactError, UsageError
from gantool.files import atomic_path, check_output_path, sha256_file
from gantool.spec import ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

SOURCE = "pytorch-CycleGAN-and-pix2pix"
PARITY_TOLERANCE = 1e-5
PARITY_SIDE = 64  # side of the random image the written checkpoint is checked on
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
SHOWN_KEYS = 5  # keys named per list in an error; the rest are counted
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")
_DROPOUT_KEY = re.compile(r"^(model\.\d+\.conv_block\.)([67])\.")  # conv and norm after a Dropout layer
_SIDE_OF_NAME = re.compile(r"(?:^|_)G_([AB])(?=[._]|$)")


@dataclass(frozen=True)
class ImportResult:
    """What ``import_cyclegan`` wrote, for the command's summary line."""

    path: Path
    spec: ModelSpec
    params: int
    max_abs_diff: float
    dropped_keys: int
    dropout: bool


def guess_direction(name: str) -> str:
    """``*net_G_A.pth`` maps A→B, ``*net_G_B.pth`` B→A; a lone pretrained ``latest_net_G.pth`` is taken as A→B."""
    match = _SIDE_OF_NAME.search(Path(name).stem)
    return "b2a" if match and match.group(1) == "B" else "a2b"


def import_cyclegan(
    source: Path,
    out_dir: Path,
    *,
    direction: str,
    domains: tuple[str, str] = ("A", "B"),
    size: int = 256,
    blocks: int | None = None,
    ngf: int | None = None,
    force: bool = False,
) -> ImportResult:
    """Convert ``source`` into ``out_dir/generator_<direction>.safetensors``, verified against the original weights."""
    out = checkpoint_in(out_dir, direction)
    check_output_path(out, force, "checkpoint")
    state = read_state_dict(source)
    state, dropout = _renumber_dropout_blocks(state)
    channels, ngf, blocks = infer_geometry(state, source, ngf=ngf, blocks=blocks)
    module, dropped = load_into_generator(state, source, channels=channels, ngf=ngf, blocks=blocks)
    spec = ModelSpec(
        kind="cyclegan", arch="resnet", arch_params={"ngf": ngf, "blocks": blocks}, channels=channels,
        height=size, width=size, direction=direction, domains=domains,
        provenance=_provenance(source, dropout, len(dropped)),
    )  # fmt: skip
    diff = _write_verified(module, spec, out)
    params = sum(p.numel() for p in module.parameters())
    return ImportResult(out, spec, params, diff, len(dropped), dropout)


def read_state_dict(source: Path) -> dict[str, torch.Tensor]:
    """The file's tensors by key, ``module.`` prefixes removed; refuses code, non-tensors and non-torch files."""
    import torch

    if not source.is_file():
        raise ArtifactError(f"{source} {'is not a file' if source.exists() else 'does not exist'}")
    if source.stat().st_size == 0:
        raise ArtifactError(f"{source} is empty")
    _refuse_safetensors(source)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise on stderr, the outcome decides
            warnings.simplefilter("ignore")
            data = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an untrusted file can fail any way; the user needs one line
        raise ArtifactError(_load_failure(source, exc)) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # a common wrapper around a state dict: {"state_dict": {...}, ...}
    if not isinstance(data, dict):
        raise ArtifactError(f"{source} holds a {type(data).__name__}, not a state dict of a {SOURCE} generator")
    odd = [str(k) for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise ArtifactError(f"{source} is not a plain state dict: {_listing(odd)} are not tensors")
    return {key.removeprefix("module."): tensor for key, tensor in data.items()}


def infer_geometry(
    state: dict[str, torch.Tensor], source: Path, *, ngf: int | None, blocks: int | None
) -> tuple[int, int, int]:
    """(channels, ngf, blocks) read from the weights; a given ``ngf``/``blocks`` must agree with them."""
    first = state.get("model.1.weight")
    if first is None or first.dim() != 4:
        hint = ""
        if "model.model.0.weight" in state:
            hint = " (a U-Net generator? only the ResNet generators are supported)"
        elif "model.0.weight" in state:
            hint = " (a PatchGAN discriminator, net_D? import a generator, net_G)"
        raise ArtifactError(
            f"{source} is not a {SOURCE} ResNet generator: no 4-D model.1.weight among its keys "
            f"({_listing(sorted(state))}){hint}"
        )
    found_ngf, channels = int(first.shape[0]), int(first.shape[1])
    found_blocks = len({int(m.group(1)) for key in state if (m := _BLOCK_KEY.match(key))})
    if ngf is not None and ngf != found_ngf:
        raise UsageError(f"--ngf {ngf} contradicts {source.name}, whose first convolution has {found_ngf} filters")
    if blocks is not None and blocks != found_blocks:
        raise UsageError(f"--blocks {blocks} contradicts {source.name}, which has {found_blocks} residual blocks")
    if found_blocks == 0:
        raise ArtifactError(f"{source} is not a {SOURCE} ResNet generator: it has no model.N.conv_block weights")
    if channels not in (1, 3):
        raise ArtifactError(f"{source} takes {channels}-channel images: gantool translators take 1 or 3 channels")
    return channels, found_ngf, found_blocks


def load_into_generator(
    state: dict[str, torch.Tensor], source: Path, *, channels: int, ngf: int, blocks: int
) -> tuple[nn.Module, list[str]]:
    """gantool's ResnetGenerator holding the file's weights, and the InstanceNorm running-stat keys dropped.

    Every other key must be one of the network's, with its shape: anything
    missing, extra or misshapen is listed in one error line.
    """
    from torch import nn

    from gantool.models import ResnetGenerator

    module = ResnetGenerator(channels, ngf, blocks)
    norms = {name for name, layer in module.named_modules() if isinstance(layer, nn.InstanceNorm2d)}
    dropped = [key for key in state if key.rpartition(".")[0] in norms and key.rpartition(".")[2] in RUNNING_STATS]
    skip = set(dropped)
    state = {key: tensor for key, tensor in state.items() if key not in skip}
    expected = module.state_dict()
    last_conv = [name for name, layer in module.named_modules() if isinstance(layer, nn.Conv2d)][-1]
    out_weight = state.get(f"{last_conv}.weight")
    if out_weight is not None and out_weight.dim() == 4 and out_weight.shape[0] != channels:
        raise ArtifactError(
            f"{source} maps {channels}-channel images to {out_weight.shape[0]}-channel ones: "
            "gantool translators keep the channel count"
        )
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshapen = [
        f"{key} {_shape(state[key])} (expected {_shape(ref)})"
        for key, ref in expected.items()
        if key in state and (state[key].shape != ref.shape or not state[key].is_floating_point())
    ]
    if missing or unexpected or misshapen:
        problems = [
            f"{label} {_listing(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape or dtype", misshapen))
            if keys
        ]
        affine = any(key.rpartition(".")[0] in norms for key in unexpected)
        hint = " (its norm layers have weights: only --norm instance generators are supported)" if affine else ""
        raise ArtifactError(
            f"{source} does not match a {SOURCE} ResNet generator with {blocks} blocks, ngf {ngf}, "
            f"{channels} channels: {'; '.join(problems)}{hint}"
        )
    module.load_state_dict(state, strict=True)
    return module.eval(), dropped


def _renumber_dropout_blocks(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """Move blocks trained with dropout (conv at conv_block.6) onto the dropout-free numbering (conv at .5)."""
    has_dropout_conv = any(key.endswith("conv_block.6.weight") and state[key].dim() == 4 for key in state)
    if not has_dropout_conv or any(key.endswith("conv_block.5.weight") for key in state):
        return state, False
    renamed = {_DROPOUT_KEY.sub(lambda m: f"{m.group(1)}{int(m.group(2)) - 1}.", key): t for key, t in state.items()}
    return renamed, True


def _write_verified(module: nn.Module, spec: ModelSpec, out: Path) -> float:
    """Write the checkpoint to a temporary name, reload it, compare outputs, then rename it into place."""
    import torch

    from gantool.checkpoint import load_generator, save_generator

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(1, spec.channels, PARITY_SIDE, PARITY_SIDE, generator=generator) * 2 - 1  # in [-1, 1]
    with atomic_path(out) as tmp:
        save_generator(module, spec, tmp)
        reloaded, _ = load_generator(tmp)
        with torch.no_grad():
            diff = float((module(images) - reloaded(images)).abs().max())
        if not diff <= PARITY_TOLERANCE:
            raise ArtifactError(
                f"the written checkpoint differs from the original weights by {diff:.2e} (> {PARITY_TOLERANCE}); "
                "nothing was written"
            )
    return diff


def _provenance(source: Path, dropout: bool, dropped: int) -> dict[str, Any]:
    import torch

    return {
        "gantool_version": __version__,
        "imported_by": "gantool import cyclegan",
        "imported_from": source.name,
        "source": SOURCE,
        "sha256": sha256_file(source),
        "source_dropout": dropout,
        "dropped_running_stats": dropped,
        "torch_version": torch.__version__,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _refuse_safetensors(source: Path) -> None:
    """A safetensors file starts with an 8-byte header length and a JSON object; say so instead of 'bad pickle'."""
    with source.open("rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        from gantool.checkpoint import read_spec

        try:
            spec = read_spec(source)
        except ArtifactError:
            raise ArtifactError(
                f"{source} is a safetensors file; 'gantool import cyclegan' reads the .pth files {SOURCE} saves"
            ) from None
        raise ArtifactError(f"{source} is already a gantool checkpoint ({spec.kind}/{spec.arch}): nothing to import")


def _load_failure(source: Path, exc: BaseException) -> str:
    """One line for a file torch.load refused: code in the pickle, or not a torch file at all."""
    text = str(exc)
    code = re.search(r"GLOBAL ([\w.]+)", text)  # weights_only names the class or function it would have to import
    if code:
        return (
            f"{source} holds more than tensors (it would import {code.group(1)}): torch.load(weights_only=True) "
            "refuses it, as unpickling it could run code; re-save the network's state_dict() where you trust the file"
        )
    if "Weights only load failed" in text:
        return f"{source} is not a PyTorch state-dict file (a corrupt file or a pickle weights_only cannot read)"
    first = text.strip().splitlines()[0] if text.strip() else "unreadable"
    return f"{source} is not a PyTorch state-dict file ({type(exc).__name__}: {first})"


def _listing(keys: list[str]) -> str:
    """The first few keys and how many there are in all, so a long list stays on one readable line."""
    shown = ", ".join(keys[:SHOWN_KEYS])
    return f"{len(keys)}: {shown}" + (f", … {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def _shape(tensor: torch.Tensor) -> str:
    dims = "×".join(str(d) for d in tensor.shape) or "scalar"
    return dims if tensor.is_floating_point() else f"{dims} {tensor.dtype}".replace("torch.", "")
