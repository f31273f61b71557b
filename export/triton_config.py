"""The ``config.pbtxt`` of one Triton model, read off the artifact it serves (export/triton_repo.py writes it).

Never off the flags of an earlier stage: an ONNX model's I/O names, element
types and shapes come from its graph, checked against the spec in its
metadata (a file that disagrees with its spec is refused, not served wrongly);
a plan's from its sidecar's profile (an axis the profile fixes is fixed, one
it lets vary is ``-1``). Dims leave out the batch axis, Triton's convention
when ``max_batch_size`` > 0, and a translator's sides are ``-1``. The spec
travels along as the model parameter ``gantool_spec``, so a client can ask the
server what it is talking to (``GET v2/models/<name>/config``). The field
names and values are model_config.proto's; tests/test_triton_repo.py parses
every config with protobuf into tritonclient's ``ModelConfig``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx

from gantool.engines import EngineInfo, sidecar_path
from gantool.errors import ArtifactError, GantoolError
from gantool.export.pbtxt import Enum, Map, Message, Value
from gantool.spec import METADATA_KEY

PLATFORMS = {"onnx": "onnxruntime_onnx", "plan": "tensorrt_plan"}
SPEC_PARAMETER, PRECISION_PARAMETER = "gantool_spec", "gantool_precision"
KINDS = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
DEFAULT_PREFERRED_BATCHES = (8, 32)
DEFAULT_QUEUE_DELAY_US = 500  # a GAN batch takes about a millisecond on a GPU: wait at most half of one to fill it
ORT_TRT_WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class TritonSettings:
    """How the repository serves the files: batching, instances, accelerator, naming (see export/triton_options.py)."""

    repo: Path
    max_batch: int  # ONNX models; a plan takes at most its engine's profile max
    preferred: tuple[int, ...] | None = None  # None: DEFAULT_PREFERRED_BATCHES up to max_batch
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: int = 1
    device: str = "auto"  # ONNX models' instance kind; plans always run on a GPU
    ort_trt: bool = False  # onnxruntime's TensorRT accelerator at FP16 for ONNX models on GPUs
    prefix: str = ""


IO = list[tuple[str, str, list[int]]]  # per tensor: name, Triton data type, dims without the batch


@dataclass(frozen=True)
class Served:
    """What one model serves, as its artifact says: I/O, spec, precision, and the batch it takes."""

    inputs: IO
    outputs: IO
    spec_json: str
    precision: str
    max_batch: int


def model_config(name: str, kind: str, source: Path, settings: TritonSettings) -> tuple[Message, Served]:
    """The ModelConfig of model ``name`` serving ``source`` (kind "onnx" or "plan"), or one clear error."""
    served = _onnx_served(source, settings) if kind == "onnx" else _plan_served(source, settings)
    return _fields(name, kind, settings, served), served


def _plan_served(engine: Path, settings: TritonSettings) -> Served:
    """From the sidecar: the profile's names, its fixed axes (-1 where it varies) and its max batch."""
    info = _sidecar(engine)
    fixed = [lo if lo == hi else -1 for lo, hi in zip(info.profile.min[1:], info.profile.max[1:], strict=True)]
    out = list(info.spec.image_shape) if info.spec.latent_dim is not None else fixed
    return Served(
        inputs=[(info.profile.input_name, "TYPE_FP32", fixed)],  # gantool engines keep their ONNX's float32 I/O
        outputs=[(info.profile.output_name, "TYPE_FP32", out)],
        spec_json=info.spec.to_json(),
        precision=info.precision,
        max_batch=min(settings.max_batch, info.profile.max_batch),
    )


def _fields(name: str, kind: str, settings: TritonSettings, served: Served) -> Message:
    max_batch = served.max_batch
    preferred = settings.preferred or tuple(b for b in DEFAULT_PREFERRED_BATCHES if b <= max_batch) or (max_batch,)
    if max(preferred) > max_batch:
        raise GantoolError(f"Triton model {name}: preferred batch {max(preferred)} exceeds max batch {max_batch}")
    device = "gpu" if kind == "plan" else settings.device
    config: dict[str, Value] = {
        "name": name,
        "platform": PLATFORMS[kind],
        "max_batch_size": max_batch,
        "input": [{"name": n, "data_type": Enum(t), "dims": list(d)} for n, t, d in served.inputs],
        "output": [{"name": n, "data_type": Enum(t), "dims": list(d)} for n, t, d in served.outputs],
        "instance_group": [{"count": settings.instances, "kind": Enum(KINDS[device])}],
        "dynamic_batching": {
            "preferred_batch_size": list(preferred),
            "max_queue_delay_microseconds": settings.queue_delay_us,
        },
    }
    if settings.ort_trt and kind == "onnx":
        accelerator: Message = {
            "name": "tensorrt",
            "parameters": Map(
                precision_mode="FP16",
                max_workspace_size_bytes=str(ORT_TRT_WORKSPACE_BYTES),
                trt_engine_cache_enable="1",  # built on the first request of each shape; cached for later loads
                trt_engine_cache_path=f"/tmp/gantool-ort-trt/{name}",
            ),
        }
        config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [accelerator]}}
    config["parameters"] = Map(
        {SPEC_PARAMETER: {"string_value": served.spec_json}, PRECISION_PARAMETER: {"string_value": served.precision}}
    )
    return config


def _onnx_served(path: Path, settings: TritonSettings) -> Served:
    """From the graph: its I/O (checked against the interface its spec gives), spec and precision from metadata."""
    from gantool.export.interface import interface_for, read_gantool_onnx
    from gantool.export.parity import check_io
    from gantool.spec import PRECISION_KEY

    model, metadata, spec = read_gantool_onnx(path, ": export it again with --force")
    check_io(model, interface_for(spec), path.name)  # names, float32, and dims as the spec says: or refuse
    initializers = {init.name for init in model.graph.initializer}

    def io(values: Iterable[onnx.ValueInfoProto]) -> IO:
        rows = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim][1:]  # the batch goes
            rows.append((value.name, _triton_type(tensor.elem_type, path), dims))
        return rows

    precision = metadata.get(PRECISION_KEY, "fp32")
    spec_json = metadata[METADATA_KEY]
    return Served(io(model.graph.input), io(model.graph.output), spec_json, precision, settings.max_batch)


def _triton_type(elem_type: int, path: Path) -> str:
    name = onnx.TensorProto.DataType.Name(elem_type)
    types = {"FLOAT": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16", "DOUBLE": "FP64", "BOOL": "BOOL"}
    triton = types.get(name, name if name.startswith(("INT", "UINT")) else None)
    if triton is None:
        raise ArtifactError(f"{path.name}: Triton has no type for ONNX {name}")
    return f"TYPE_{triton}"


def _sidecar(engine: Path) -> EngineInfo:
    sidecar = sidecar_path(engine)
    if not engine.is_file() or not sidecar.is_file():
        raise ArtifactError(f"{engine} or its sidecar {sidecar.name} does not exist: build it with --trt")
    return EngineInfo.from_json(sidecar.read_text(encoding="utf-8"), sidecar)
