"""ONNX Runtime backend: the lean path — numpy and onnxruntime only, never torch.

The model comes from a file a user may have been handed, so before
onnxruntime sees it we check that it is self-contained: gantool exports are
single files, and an initializer pointing at external data could name any path
on the machine (DESIGN.md: "do not load ONNX external data"). The check walks
the protobuf wire format directly instead of importing ``onnx`` (≈150 ms of
start-up on the hot path of ``gantool generate MODEL.onnx``), and the bytes
that were checked are the bytes handed to onnxruntime, so the file cannot
change in between. Loading from bytes also means onnxruntime knows no model
folder to resolve external paths against.

The spec is read from the model's metadata (``gantool.spec``), so an ONNX file
is enough to sample from; a file without it is refused as "not a gantool model".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gantool.artifacts import resolve_onnx
from gantool.errors import ArtifactError
from gantool.runtime.backends.base import Backend
from gantool.spec import METADATA_KEY, ModelSpec

# For each ONNX message, the fields (by protobuf number) that can lead to a TensorProto.
# The walk visits only these and skips everything else — weights included — by length.
# tests/test_runtime.py checks this table against onnx's own descriptors.
TENSOR_PATHS: dict[str, dict[int, str]] = {
    "ModelProto": {7: "GraphProto", 20: "TrainingInfoProto", 25: "FunctionProto"},
    "GraphProto": {1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto"},
    "NodeProto": {5: "AttributeProto"},
    "AttributeProto": {
        5: "TensorProto",
        6: "GraphProto",
        10: "TensorProto",
        11: "GraphProto",
        22: "SparseTensorProto",
        23: "SparseTensorProto",
    },
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto"},
    "TrainingInfoProto": {1: "GraphProto", 2: "GraphProto"},
    "FunctionProto": {7: "NodeProto", 11: "AttributeProto"},
    "TensorProto": {},
}
TENSOR_EXTERNAL_DATA = 13  # TensorProto.external_data (repeated key/value: location, offset, ...)
TENSOR_DATA_LOCATION = 14  # TensorProto.data_location; 1 = EXTERNAL
MAX_NESTING = 100  # protobuf's own default recursion limit
MODEL_METADATA_PROPS = 14  # ModelProto.metadata_props (repeated StringStringEntryProto: 1 key, 2 value)


class OnnxRuntimeBackend(Backend):
    """An exported ``.onnx`` (FP32 or FP16 inside, FP32 in and out) on onnxruntime's CPU provider."""

    name: ClassVar[str] = "onnxruntime"
    requires: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    install_hint: ClassVar[str] = "pip install onnxruntime"
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")  # which exported file a run dir gives

    def __init__(self, device: str | None = None, precision: str = "fp32") -> None:
        super().__init__(device, precision)
        self._session: Any = None
        self._input = self._output = ""
        self._fixed_size: tuple[int, int] | None = None  # a translator exported for one H×W only

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        return resolve_onnx(model, precision, direction=direction)

    @classmethod
    def peek_spec(cls, artifact: Path) -> ModelSpec | None:
        """The spec from the file's metadata, read from the protobuf directly: no session, no onnxruntime import."""
        try:
            text = read_metadata(artifact.read_bytes()).get(METADATA_KEY)
            return None if text is None else ModelSpec.from_json(text)
        except (OSError, ValueError, IndexError, ArtifactError):
            return None  # load() reports a missing, corrupt or foreign file in its own words

    def _load(self, artifact: Path) -> ModelSpec:
        data = artifact.read_bytes()
        if has_external_data(data, artifact):
            raise ArtifactError(
                f"{artifact} stores weights in external files, which gantool does not load; re-export it as one file"
            )
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: no optimiser chatter on stderr
        # Idle intra-op threads sleep instead of spinning: generate encodes PNGs on other threads while the
        # next batch runs, and spinning threads steal those cores (1000 PNGs on 2 cores: 0.25 s → 0.14 s).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 -- onnxruntime's error classes (InvalidProtobuf, Fail, ...) derive from Exception only
            raise ArtifactError(f"{artifact} is not a loadable ONNX model ({_first_line(exc)})") from None
        metadata = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise ArtifactError(
                f"{artifact} is an ONNX model but not a gantool model (no {METADATA_KEY} in its metadata)"
            )
        try:
            spec = ModelSpec.from_json(metadata[METADATA_KEY])
        except ArtifactError as exc:
            raise ArtifactError(f"{artifact}: {exc}") from None
        # The names come from the file (a GAN: "z" → "images", a translator: "images" → "translated"); the rank
        # must match the spec, or the file's interface and its metadata disagree.
        inputs, outputs = session.get_inputs(), session.get_outputs()
        rank = 2 if spec.latent_dim is not None else 4
        if len(inputs) != 1 or len(outputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != rank:
            raise ArtifactError(
                f"{artifact} does not have gantool's graph interface for a {spec.kind} model "
                f"(one float32 input of rank {rank}, one output)"
            )
        self._session, self._input, self._output = session, inputs[0].name, outputs[0].name
        height, width = inputs[0].shape[2:] if rank == 4 else (None, None)
        if isinstance(height, int) and isinstance(width, int):
            self._fixed_size = (height, width)
        return spec

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self._session is not None, "load() first"
        self.check_input(batch)
        if self._fixed_size is not None and tuple(batch.shape[2:]) != self._fixed_size:
            height, width = self._fixed_size
            raise ArtifactError(
                f"{self.artifact} was exported for {height}×{width} images only, got {batch.shape[2]}×{batch.shape[3]}: "
                "translate at that size, or re-export with gantool export"
            )
        feed = {self._input: np.ascontiguousarray(batch, dtype=np.float32)}
        return self._session.run([self._output], feed)[0].astype(np.float32, copy=False)


def has_external_data(data: bytes, path: Path) -> bool:
    """Whether any tensor in the serialized ModelProto refers to external data; ArtifactError if unparsable."""
    try:
        return _walk(memoryview(data), 0, len(data), "ModelProto", 0)
    except (ValueError, IndexError):
        raise ArtifactError(f"{path} is not a valid ONNX file (corrupt or truncated protobuf)") from None


def read_metadata(data: bytes) -> dict[str, str]:
    """ModelProto.metadata_props as a dict, skipping every other top-level field (the graph, weights) by length."""
    view, pos, metadata = memoryview(data), 0, {}
    while pos < len(view):
        key, pos = _varint(view, pos)
        field, wire = key >> 3, key & 7
        if wire != 2:
            pos = _skip(view, pos, wire)
            continue
        length, pos = _varint(view, pos)
        if field == MODEL_METADATA_PROPS:
            entry = _strings(view, pos, pos + length)
            metadata[entry.get(1, "")] = entry.get(2, "")
        pos += length
    if pos != len(view):
        raise ValueError("message runs past its end")
    return metadata


def _strings(view: memoryview, pos: int, end: int) -> dict[int, str]:
    """The length-delimited fields of a small message (StringStringEntryProto: 1 key, 2 value) as text."""
    fields = {}
    while pos < end:
        key, pos = _varint(view, pos)
        if key & 7 != 2:
            pos = _skip(view, pos, key & 7)
            continue
        length, pos = _varint(view, pos)
        fields[key >> 3] = bytes(view[pos : pos + length]).decode("utf-8", errors="replace")
        pos += length
    return fields


def _skip(view: memoryview, pos: int, wire: int) -> int:
    """Past one non-length-delimited value."""
    if wire == 0:
        return _varint(view, pos)[1]
    if wire in (1, 5):
        return pos + (8 if wire == 1 else 4)
    raise ValueError(f"unexpected wire type {wire}")


def _walk(data: memoryview, pos: int, end: int, message: str, depth: int) -> bool:
    """Scan one message's fields; recurse into those that can hold tensors."""
    if depth > MAX_NESTING:
        raise ValueError("nested too deeply")
    children = TENSOR_PATHS[message]
    is_tensor = message == "TensorProto"
    while pos < end:
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:  # varint
            value, pos = _varint(data, pos)
            if is_tensor and field == TENSOR_DATA_LOCATION and value == 1:
                return True
        elif wire == 1:  # 64-bit
            pos += 8
        elif wire == 5:  # 32-bit
            pos += 4
        elif wire == 2:  # length-delimited: bytes, strings, packed arrays, sub-messages
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("field runs past its message")
            if is_tensor and field == TENSOR_EXTERNAL_DATA:
                return True
            child = children.get(field)
            if child is not None and _walk(data, pos, pos + length, child, depth + 1):
                return True
            pos += length
        else:  # groups (3, 4) are not used by ONNX; 6 and 7 are invalid
            raise ValueError(f"unexpected wire type {wire}")
    if pos != end:
        raise ValueError("message runs past its end")
    return False


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
