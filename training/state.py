"""Training state for ``--resume``: networks, optimizers, counters and RNG states in one file.

The file is ours but may travel between users, so it holds only tensors and
plain containers and is read with ``torch.load(weights_only=True)``: loading it
can never run code. It is written atomically after everything else of a save
point (an epoch's end, ``--save-every``, an interrupt), so it always describes
a complete optimisation step: the position (finished epochs, batches into the
next), the partial sums of that epoch's metrics and every random stream.
Version 1 states (epoch ends only, before step-granular resume) still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.errors import ArtifactError
from gantool.files import atomic_save

if TYPE_CHECKING:
    import torch

STATE_FORMAT = "gantool.train_state"
STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)
# Counters a state may hold besides "epoch" (always there): each a non-negative integer when present.
COUNTERS = ("steps", "global_step", "batch", "steps_per_epoch")


def rng_states(noise: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """Every random stream training draws from: torch's global CPU (and CUDA) RNG and our noise generator."""
    import torch

    states = {"cpu": torch.get_rng_state(), "noise": noise.get_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict[str, torch.Tensor], noise: torch.Generator, device: torch.device) -> None:
    """Put the random streams back where a saved epoch left them (CUDA's only when resuming on CUDA)."""
    import torch

    torch.set_rng_state(states["cpu"])
    noise.set_state(states["noise"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def save_train_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state dict atomically; tensors are moved to CPU so a resume may pick another device."""
    import torch

    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **_to_cpu(state)}
    atomic_save(path, lambda tmp: torch.save(payload, tmp))


def load_train_state(path: Path) -> dict[str, Any]:
    """Read a state written by ``save_train_state``, refusing anything else in one line.

    ``torch.load(weights_only=True)`` unpickles only tensors and plain
    containers, so a file carrying code is refused without running it. A
    damaged file can make the unpickler fail in any way (IndexError, KeyError,
    ...), so every failure becomes one ArtifactError. The counters that say
    where the run stands are checked here, before anyone compares or indexes them.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- an untrusted file can fail the unpickler any way; one line for all
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{path}: not a readable gantool training state ({first})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ArtifactError(f"{path} is not a gantool training state")
    if state.get("version") not in READABLE_VERSIONS or isinstance(state.get("version"), bool):
        raise ArtifactError(f"{path}: training state version {state.get('version')!r} is not supported")
    if state.get("kind") not in ("gan", "cyclegan") or not isinstance(state.get("config"), dict):
        raise ArtifactError(f"{path}: training state of an unknown kind of run ({state.get('kind')!r})")
    for name in ("epoch", *(key for key in COUNTERS if key in state)):
        value = state.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ArtifactError(f"{path}: training state {name} must be a non-negative integer, got {value!r}")
    size, ranks = state.get("world_size", 1), state.get("rank_states", [])
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ArtifactError(f"{path}: training state world_size must be a positive integer, got {size!r}")
    if not isinstance(ranks, list) or len(ranks) != size - 1 or not all(isinstance(r, dict) for r in ranks):
        raise ArtifactError(f"{path}: training state of {size} processes must hold the states of ranks 1 to {size - 1}")
    return state


def _to_cpu(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value
