"""The graph interface of an exported file, per kind of model: names, shapes, dynamic axes, parity inputs.

One table instead of GAN/translator branches scattered through the exporter:

- GAN: ``z`` float32 [batch, Z] → ``images`` float32 [batch, C, H, W]; only the
  batch is dynamic (the image size is fixed by the architecture).
- Translator (CycleGAN ResNet): ``images`` float32 [batch, C, height, width] →
  ``translated`` float32 [batch, C, height, width], both in ``spec.value_range``.
  Batch, height and width are all dynamic: the network is fully convolutional,
  so one file serves any size whose sides are multiples of 4 (two stride-2
  downsamplings) and at least 8 (its residual blocks reflection-pad the H/4×W/4
  maps by 1, which needs 2 pixels).

Parity inputs prove the dynamic axes: a GAN is checked at two batch sizes; a
translator at its native size (batch 1) and at a larger, non-square size
(batch 2), so neither the batch nor a side can have been frozen to the
example the exporter traced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gantool.errors import ArtifactError, GantoolError
from gantool.latents import latent_batch
from gantool.spec import METADATA_KEY, MIN_SIDE, SIZE_MULTIPLE, ModelSpec, fits_translator

if TYPE_CHECKING:
    import onnx

GAN_INPUT, GAN_OUTPUT = "z", "images"
TRANSLATOR_INPUT, TRANSLATOR_OUTPUT = "images", "translated"
BATCH, HEIGHT, WIDTH = "batch", "height", "width"  # names of the dynamic axes in the ONNX file
TRACE_BATCH = 2  # example batch for tracing: not 1, which torch.export would treat as a constant
GAN_PARITY_BATCHES = (1, 16)
TRANSLATOR_PARITY_GROWTH = (4, 8)  # the second parity size: (H + 4) × (W + 8), non-square even for a square model
PARITY_SEED = 0

Dims = tuple[str | int, ...]  # per axis: the name of a dynamic axis, or a fixed size


@dataclass(frozen=True)
class GraphInterface:
    """What the exported graph takes and returns, and the inputs its parity check runs on."""

    input_name: str
    output_name: str
    input_dims: Dims
    output_dims: Dims
    example_shape: tuple[int, ...]  # the input the exporter traces with
    parity_inputs: tuple[np.ndarray, ...]

    @property
    def is_translator(self) -> bool:
        return self.input_name == TRANSLATOR_INPUT

    def describe(self) -> str:
        """``z float32 [batch, 8] -> images float32 [batch, 1, 8, 8]``: for the file's doc string and messages."""
        return (
            f"{self.input_name} float32 [{', '.join(map(str, self.input_dims))}] -> "
            f"{self.output_name} float32 [{', '.join(map(str, self.output_dims))}]"
        )


def interface_for(spec: ModelSpec) -> GraphInterface:
    """The interface an export of ``spec``'s generator must have; GantoolError if it cannot be exported."""
    if spec.latent_dim is not None:
        return GraphInterface(
            input_name=GAN_INPUT,
            output_name=GAN_OUTPUT,
            input_dims=(BATCH, spec.latent_dim),
            output_dims=(BATCH, *spec.image_shape),
            example_shape=(TRACE_BATCH, spec.latent_dim),
            parity_inputs=tuple(latent_batch(PARITY_SEED, 0, n, spec.latent_dim) for n in GAN_PARITY_BATCHES),
        )
    if spec.kind != "cyclegan":  # the spec schema allows no other latent-free kind today; refuse a future one
        raise GantoolError(f"exporting {spec.kind} ({spec.arch}) models is not supported")
    check_translator_size(spec.height, spec.width, "the model's native size")
    grow_h, grow_w = TRANSLATOR_PARITY_GROWTH
    shapes = [
        (1, spec.channels, spec.height, spec.width),
        (2, spec.channels, spec.height + grow_h, spec.width + grow_w),
    ]
    dims: Dims = (BATCH, spec.channels, HEIGHT, WIDTH)
    return GraphInterface(
        input_name=TRANSLATOR_INPUT,
        output_name=TRANSLATOR_OUTPUT,
        input_dims=dims,
        output_dims=dims,
        example_shape=(TRACE_BATCH, spec.channels, spec.height, spec.width),
        parity_inputs=tuple(translator_images(spec, shape, PARITY_SEED) for shape in shapes),
    )


def check_translator_size(height: int, width: int, what: str) -> None:
    """Sides a ResNet translator can take: multiples of SIZE_MULTIPLE, at least MIN_SIDE."""
    if not fits_translator(height, width):
        raise GantoolError(
            f"{what} is {height}×{width}: a translator needs sides that are multiples of {SIZE_MULTIPLE}, "
            f"at least {MIN_SIDE}"
        )


def translator_images(spec: ModelSpec, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Deterministic float32 images of ``shape``, uniform over the model's value range."""
    low, high = spec.value_range
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def read_gantool_onnx(path: Path, missing_hint: str = "") -> tuple[onnx.ModelProto, dict[str, str], ModelSpec]:
    """An exported file, loaded without external data: its graph, its metadata and the spec in it.

    ArtifactError (one line) for a missing or unreadable file, or one gantool did not write.
    """
    import onnx

    if not path.is_file():
        raise ArtifactError(f"{path} does not exist{missing_hint}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise ArtifactError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    if METADATA_KEY not in metadata:
        raise ArtifactError(f"{path} is not a gantool model (no {METADATA_KEY} in its metadata)")
    return model, metadata, ModelSpec.from_json(metadata[METADATA_KEY])
