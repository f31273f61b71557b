"""Training state for ``--resume``: networks, optimizers, counters and RNG states in one file.

The file is ours but may travel between users, so it holds only tensors and
plain containers and is read with ``torch.load(weights_only=True)``: loading it
can never run code. It is written atomically at the end of every epoch, after
everything else of that epoch, so it always describes a complete epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.errors import ArtifactError
from gantool.files import atomic_save

if TYPE_CHECKING:
    import torch

STATE_FORMAT = "gantool.train_state"
STATE_VERSION = 1


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
    """Read a state written by ``save_train_state``, refusing anything else in one line."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{path}: not a readable gantool training state ({first})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ArtifactError(f"{path} is not a gantool training state")
    if state.get("version") != STATE_VERSION:
        raise ArtifactError(f"{path}: training state version {state.get('version')!r} is not supported")
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
