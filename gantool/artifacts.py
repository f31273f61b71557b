"""Where artifacts live: the run-dir layout, and finding the right file from what a user passes.

A user may hand any stage a run dir, a checkpoint or an exported file. These
helpers turn that into the concrete file a stage needs, or one clear error
saying which command produces it.

Run dir layout (written by ``gantool train``, completed by ``gantool export``)::

    RUN/generator.safetensors     weights + spec (a GAN)
    RUN/generator_a2b.safetensors, RUN/generator_b2a.safetensors
                                  the two translators of a CycleGAN run, one per direction
    RUN/generator.onnx            FP32 ONNX (after export; generator_a2b.onnx … for CycleGAN)
    RUN/generator.fp16.onnx       FP16 ONNX (after export)
    RUN/generator.int8.onnx       INT8 QDQ ONNX (after export --int8), with its quality verdict inside
    RUN/generator.fp16.engine     FP16 TensorRT plan (after export --trt), with
    RUN/generator.fp16.engine.json  its sidecar: spec, profile, where it was built
    RUN/generator.int8.engine     INT8 TensorRT plan from the QDQ file (after export --trt --int8)
    RUN/train_state.pt            optimizers, RNG states, epoch and step: for --resume
    RUN/checkpoints/step_NNNNNNN/ periodic saves (--save-every N, the last --keep K)
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
INT8_ONNX_SUFFIX = ".int8.onnx"
ENGINE_SUFFIX = ".engine"
FP16_ENGINE_SUFFIX = ".fp16.engine"
INT8_ENGINE_SUFFIX = ".int8.engine"
TRAIN_STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
RUN_OPTIONS_FILE = "run.json"


DIRECTIONS = ("a2b", "b2a")


def checkpoint_in(run_dir: Path, direction: str | None = None) -> Path:
    """A run dir's generator checkpoint: the GAN's, or the CycleGAN translator for ``direction``."""
    stem = GENERATOR_STEM if direction is None else f"{GENERATOR_STEM}_{direction}"
    return run_dir / f"{stem}{CHECKPOINT_SUFFIX}"


def run_checkpoints(run_dir: Path) -> list[Path]:
    """Every generator checkpoint in a run dir: one for a GAN, both directions for a CycleGAN."""
    candidates = [checkpoint_in(run_dir), *(checkpoint_in(run_dir, d) for d in DIRECTIONS)]
    return [path for path in candidates if path.is_file()]


def onnx_path_for(checkpoint: Path, out_dir: Path, precision: str) -> Path:
    """Where export writes a checkpoint's ONNX file: ``<stem>.onnx``, ``<stem>.fp16.onnx`` or ``<stem>.int8.onnx``."""
    suffix = {"fp16": FP16_ONNX_SUFFIX, "int8": INT8_ONNX_SUFFIX}.get(precision, ONNX_SUFFIX)
    return out_dir / f"{checkpoint.name.removesuffix(CHECKPOINT_SUFFIX)}{suffix}"


def engine_path_for(checkpoint: Path, out_dir: Path, precision: str = "fp16") -> Path:
    """Where ``export --trt`` writes a checkpoint's engine: ``<stem>.fp16.engine`` or, with --int8, ``<stem>.int8.engine``.

    The sidecar is the engine's path + ``.json``.
    """
    suffix = INT8_ENGINE_SUFFIX if precision == "int8" else FP16_ENGINE_SUFFIX
    return out_dir / f"{checkpoint.name.removesuffix(CHECKPOINT_SUFFIX)}{suffix}"


def resolve_checkpoint(model: Path, direction: str | None = None) -> Path:
    """The safetensors checkpoint behind a run dir or checkpoint path.

    In a CycleGAN run dir ``direction`` picks the translator (a2b when not given).
    """
    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    if model.is_dir():
        gan = checkpoint_in(model)
        if gan.is_file() and direction is None:
            return gan
        translator = checkpoint_in(model, direction or DIRECTIONS[0])
        if translator.is_file():
            return translator
        if gan.is_file():
            raise ArtifactError(f"{model} holds a GAN generator: --direction applies to CycleGAN runs only")
        raise ArtifactError(f"{model} holds no {gan.name}: is it a gantool run dir? (gantool train writes one)")
    if model.name.endswith(CHECKPOINT_SUFFIX):
        return model
    if is_onnx(model) or is_engine(model):
        raise ArtifactError(f"{model} is an exported file, not a checkpoint: pass the run dir or the .safetensors file")
    raise ArtifactError(f"{model} is not a checkpoint: expected a run dir or a {CHECKPOINT_SUFFIX} file")


def resolve_onnx(model: Path, precision: str = "fp32", direction: str | None = None) -> Path:
    """The ONNX file behind a run dir, a checkpoint (its exported sibling) or an .onnx path."""
    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    if model.is_file() and model.suffix == ONNX_SUFFIX:
        return model
    checkpoint = resolve_checkpoint(model, direction)
    path = onnx_path_for(checkpoint, checkpoint.parent, precision)
    if not path.is_file():
        flag = " --int8" if precision == "int8" else ""
        raise ArtifactError(f"{path} does not exist: run 'gantool export {model}{flag}' first")
    return path


def is_onnx(model: Path) -> bool:
    return model.suffix == ONNX_SUFFIX


def resolve_engine(model: Path, direction: str | None = None, precision: str = "fp16") -> Path:
    """The TensorRT engine behind a run dir, a checkpoint (its built sibling, per precision) or an .engine path."""
    if not model.exists():
        raise ArtifactError(f"{model} does not exist")
    if model.is_file() and is_engine(model):
        return model
    if model.is_file() and is_onnx(model):
        raise ArtifactError(f"{model} is an ONNX file: build its engine with 'gantool export {model} --trt'")
    checkpoint = resolve_checkpoint(model, direction)
    path = engine_path_for(checkpoint, checkpoint.parent, precision)
    if not path.is_file():
        flags = "--trt --int8" if precision == "int8" else "--trt"
        raise ArtifactError(f"{path} does not exist: run 'gantool export {model} {flags}' on the GPU machine first")
    return path


def is_engine(model: Path) -> bool:
    return model.suffix == ENGINE_SUFFIX
