"""Reading an ONNX file without ``onnx``: is it self-contained, and what does its metadata say.

gantool's ONNX files come from users' hands, so before onnxruntime sees one we
check that no tensor points at external data: an initializer naming an
external file could name any path on the machine (DESIGN.md: "do not load ONNX
external data"). The check walks the protobuf wire format directly instead of
importing ``onnx`` (≈150 ms of start-up on the hot path of ``gantool generate
MODEL.onnx``). The same reader pulls ``metadata_props`` out of the file, so the
model spec can be read without creating a session.
"""

from __future__ import annotations

from pathlib import Path

from gantool.errors import ArtifactError

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


def has_external_data(data: bytes, path: Path) -> bool:
    """Whether any tensor in the serialized ModelProto refers to external data; ArtifactError if unparsable."""
    try:
        return _walk(memoryview(data), 0, len(data), "ModelProto", 0)
    except (ValueError, IndexError):
        raise ArtifactError(f"{path} is not a valid ONNX file (corrupt or truncated protobuf)") from None


def read_metadata(data: bytes, path: Path | str = "ONNX file") -> dict[str, str]:
    """ModelProto.metadata_props as a dict, skipping every other top-level field (the graph, weights) by length.

    ArtifactError if the bytes are not a well-formed protobuf message.
    """
    try:
        return _metadata(memoryview(data))
    except (ValueError, IndexError):
        raise ArtifactError(f"{path} is not a valid ONNX file (corrupt or truncated protobuf)") from None


def _metadata(view: memoryview) -> dict[str, str]:
    pos, metadata = 0, {}
    while pos < len(view):
        key, pos = _varint(view, pos)
        field, wire = key >> 3, key & 7
        if wire != 2:
            pos = _skip(view, pos, wire)
            continue
        length, pos = _varint(view, pos)
        if pos + length > len(view):
            raise ValueError("field runs past the end of the file")
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
        if pos + length > end:
            raise ValueError("field runs past its message")
        fields[key >> 3] = bytes(view[pos : pos + length]).decode("utf-8", errors="replace")
        pos += length
    if pos != end:
        raise ValueError("message runs past its end")
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
