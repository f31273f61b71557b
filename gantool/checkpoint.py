"""Generator checkpoints: safetensors weights with the model spec in their metadata.

safetensors holds raw tensors and a JSON header, so loading a checkpoint a
user was handed runs no code (unlike a pickle). The spec sits in the header's
``__metadata__`` under ``gantool.spec``; ``read_spec`` reads it with numpy
only, so the onnxruntime path can inspect a checkpoint without torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from gantool.errors import ArtifactError
from gantool.files import atomic_save
from gantool.spec import METADATA_KEY, ModelSpec

if TYPE_CHECKING:
    from torch import nn

# A generator's weights are loaded only up to this many parameters (4 GiB of float32): the largest real models
# (CycleGAN ResNet-9: 11.4M; an MLP at 256×256 RGB: ~200M) fit many times over, and a spec asking for more is a
# damaged or hostile file, refused before anything is allocated.
MAX_PARAMETERS = 1 << 30
# safetensors' names for the dtypes gantool's networks hold (weights float32; BatchNorm's batch counter int64).
_DTYPE_NAMES = {"torch.float32": "F32", "torch.int64": "I64"}


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
    try:
        return ModelSpec.from_json(metadata[METADATA_KEY])
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None


def save_generator(module: nn.Module, spec: ModelSpec, path: Path) -> None:
    """Write the generator's weights and spec atomically to ``path``."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    atomic_save(path, lambda tmp: save_file(state, str(tmp), metadata={METADATA_KEY: spec.to_json()}))


def load_generator(path: Path) -> tuple[nn.Module, ModelSpec]:
    """Rebuild the generator a checkpoint describes and load its weights (eval mode, CPU).

    Nothing is allocated until the file is known to fit: the network is first
    built on PyTorch's meta device (shapes, no memory), its size is bounded by
    MAX_PARAMETERS, and the tensor names, shapes and dtypes in the file's
    header must be exactly the network's. Only then are the weights read, into
    tensors of those shapes, and assigned to the network as they are.
    """
    import torch
    from safetensors.torch import load_file

    from gantool.models import build_generator

    spec = read_spec(path)
    try:
        with torch.device("meta"):
            module = build_generator(spec)
    except ValueError as exc:  # a geometry the architecture cannot build (dcgan needs sides like 28, 32, 64)
        raise ArtifactError(f"{path}: {exc}") from None
    expected = {
        name: (tuple(t.shape), _DTYPE_NAMES.get(str(t.dtype), str(t.dtype))) for name, t in module.state_dict().items()
    }
    count = sum(math.prod(shape) for shape, _ in expected.values())
    if count > MAX_PARAMETERS:
        raise ArtifactError(
            f"{path}: its spec describes a {spec.arch} generator of {count:,} parameters, "
            f"more than gantool loads ({MAX_PARAMETERS:,})"
        )
    _check_header(path, expected, spec)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read weights ({_first_line(exc)})") from None
    try:
        module.load_state_dict(state, strict=True, assign=True)  # the file's tensors become the weights
    except RuntimeError as exc:  # the file was replaced between reading its header and its weights
        raise ArtifactError(
            f"{path}: weights do not match the spec's {spec.arch} generator ({_first_line(exc)})"
        ) from None
    return module.eval(), spec


def _check_header(path: Path, expected: dict[str, tuple[tuple[int, ...], str]], spec: ModelSpec) -> None:
    """The file's tensors, read from its header only, must be the network's: same names, shapes and dtypes."""
    try:
        with safe_open(str(path), framework="numpy") as handle:
            found = {
                name: (tuple(handle.get_slice(name).get_shape()), handle.get_slice(name).get_dtype())
                for name in handle.keys()  # noqa: SIM118 -- safe_open is not a mapping
            }
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a readable safetensors checkpoint ({_first_line(exc)})") from None
    if found == expected:
        return
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    differ = sorted(name for name in set(found) & set(expected) if found[name] != expected[name])
    if missing or unexpected:
        detail = f"missing {_listing(missing)}" if missing else f"unexpected {_listing(unexpected)}"
    else:
        name = differ[0]
        detail = f"{name} is {_describe(found[name])}, expected {_describe(expected[name])}"
    raise ArtifactError(f"{path}: weights do not match the spec's {spec.arch} generator ({detail})")


def _describe(entry: tuple[tuple[int, ...], str]) -> str:
    shape, dtype = entry
    return f"{dtype} {'×'.join(map(str, shape)) or 'scalar'}"


def _listing(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _require_file(path: Path) -> None:
    if not path.exists():
        raise ArtifactError(f"{path} does not exist")
    if not path.is_file():
        raise ArtifactError(f"{path} is not a file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
