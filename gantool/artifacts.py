"""Where artifacts live: the run-dir layout, and finding the right file from what a user passes.

A user may hand any stage a run dir, a checkpoint or an exported file. These
helpers turn that into the concrete file a stage needs, or one clear error
saying which command produces it.

Run dir layout (written by ``gantool train``, completed by ``gantool export``)::

    RUN/generator.safetensors     weights + spec
    RUN/generator.onnx            FP32 ONNX (after export)
    RUN/generator.fp16.onnx       FP16 ONNX (after export)
    RUN/train_state.pt            optimizers, RNG states, epoch: for --resume
    RUN/metrics.jsonl             one line of losses per epoch
    RUN/samples/epoch_NNNN.png    a grid from fixed noise per epoch
    RUN/run.json                  the resolved training options
"""

from __future__ import annotations

from pathlib import Path

from gantool.errors import ArtifactError

GENERATOR_STEM = "generator"
CHECKPOINT_SUFFIX = ".safetensors"
ONNX_SUFFIX = ".onnx"
FP16_ONNX_SUFFIX = ".fp16.onnx"
TRAIN_STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
RUN_OPTIONS_FILE = "run.json"


def checkpoint_in(run_dir: Path) -> Path:
    return run_dir / f"{GENERATOR_STEM}{CHECKPOINT_SUFFIX}"


def onnx_path_for(checkpoint: Path, out_dir: Path, precision: str) -> Path:
    """Where export writes a checkpoint's ONNX file: ``<stem>.onnx`` or ``<stem>.fp16.onnx``."""
    suffix = FP16_ONNX_SUFFIX if precision == "fp16" else ONNX_SUFFIX
    return out_dir / f"{checkpoint.name.removesuffix(CHECKPOINT_SUFFIX)}{suffix}"


def resolve_checkpoint(model: Path) -> Path:
    """The safetensors checkpoint behind a run dir or checkpoint path."""
    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    if model.is_dir():
        path = checkpoint_in(model)
        if not path.is_file():
            raise ArtifactError(f"{model} holds no {path.name}: is it a gantool run dir? (gantool train writes one)")
        return path
    if model.name.endswith(CHECKPOINT_SUFFIX):
        return model
    raise ArtifactError(f"{model} is not a checkpoint: expected a run dir or a {CHECKPOINT_SUFFIX} file")


def resolve_onnx(model: Path, precision: str = "fp32") -> Path:
    """The ONNX file behind a run dir, a checkpoint (its exported sibling) or an .onnx path."""
    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    if model.is_file() and model.suffix == ONNX_SUFFIX:
        return model
    checkpoint = resolve_checkpoint(model)
    path = onnx_path_for(checkpoint, checkpoint.parent, precision)
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist: run 'gantool export {model}' first")
    return path


def is_onnx(model: Path) -> bool:
    return model.suffix == ONNX_SUFFIX
