"""Generator checkpoints: safetensors weights with the model spec in their metadata.

safetensors holds raw tensors and a JSON header, so loading a checkpoint a
user was handed runs no code (unlike a pickle). The spec sits in the header's
``__metadata__`` under ``gantool.spec``; ``read_spec`` reads it with numpy
only, so the onnxruntime path can inspect a checkpoint without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from gantool.errors import ArtifactError
from gantool.files import atomic_save
from gantool.spec import METADATA_KEY, ModelSpec

if TYPE_CHECKING:
    from torch import nn


def read_spec(path: Path) -> ModelSpec:
    """The spec stored in a checkpoint, checked against the schema; no torch needed."""
    _require_file(path)
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a readable safetensors checkpoint ({_first_line(exc)})") from None
    if METADATA_KEY not in metadata:
        raise ArtifactError(f"{path} is a safetensors file but not a gantool checkpoint (no model spec inside)")
    return ModelSpec.from_json(metadata[METADATA_KEY])


def save_generator(module: nn.Module, spec: ModelSpec, path: Path) -> None:
    """Write the generator's weights and spec atomically to ``path``."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    atomic_save(path, lambda tmp: save_file(state, str(tmp), metadata={METADATA_KEY: spec.to_json()}))


def load_generator(path: Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the generator a checkpoint describes and load its weights (eval mode, CPU)."""
    from safetensors.torch import load_file

    from gantool.models import build_generator

    spec = read_spec(path)
    module = build_generator(spec)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read weights ({_first_line(exc)})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing/unexpected keys or wrong shapes
        raise ArtifactError(
            f"{path}: weights do not match the spec's {spec.arch} generator ({_first_line(exc)})"
        ) from None
    return module.eval(), spec


def _require_file(path: Path) -> None:
    if not path.exists():
        raise ArtifactError(f"{path} does not exist")
    if not path.is_file():
        raise ArtifactError(f"{path} is not a file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
