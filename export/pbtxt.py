"""A small protobuf text-format writer: Triton's ``config.pbtxt`` without depending on tritonclient or protobuf.

A message is a ``dict`` (field name → value, in the order written); a value is
a ``str`` (quoted and escaped), an ``int``, an ``Enum`` (written bare:
``TYPE_FP32``), a nested message, or a ``list`` of scalars or of messages (a
repeated field, written in the list syntax Triton's own docs use), or a ``Map``
(a protobuf ``map``: one ``name { key: ... value ... }`` block per entry, as
Triton's docs write ``parameters``). Only this subset is needed; anything else
is a bug here and raises TypeError. The tests parse every output with protobuf's own text_format
into tritonclient's ``ModelConfig``, which is the proof this writer is right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias, Union

INDENT = "  "


class Enum(str):
    """An enum value, written bare (``KIND_GPU``), never quoted."""


Scalar: TypeAlias = str | int | Enum
# Mapping and Sequence, not dict and list: they are covariant, so a list[int] is a Sequence[Scalar].
Value: TypeAlias = Union[Scalar, "Message", "Map", Sequence[Scalar], Sequence["Message"]]
Message: TypeAlias = Mapping[str, Value]


class Map(dict[str, Scalar | Message]):
    """A protobuf map field: key → a scalar value (``map<string, string>``) or a message value."""


def to_pbtxt(message: Message) -> str:
    """The text format of ``message`` as a top-level document, one field per line."""
    return "".join(_fields(message, 0))


def escape(text: str) -> str:
    """A text-format string literal's body: C escapes, non-ASCII as octal UTF-8 bytes (what protobuf's C++ reads)."""
    named = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("'"): "\\'", ord("\\"): "\\\\"}
    out = []
    for byte in text.encode("utf-8"):
        if byte in named:
            out.append(named[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def _fields(message: Message, depth: int) -> list[str]:
    pad = INDENT * depth
    lines: list[str] = []
    for name, value in message.items():
        if isinstance(value, Map):
            for key, item in value.items():
                entry: Message = {"key": key, "value": item}
                lines += [f"{pad}{name} {{\n", *_fields(entry, depth + 1), f"{pad}}}\n"]
        elif isinstance(value, Mapping):
            lines += [f"{pad}{name} {{\n", *_fields(value, depth + 1), f"{pad}}}\n"]
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            lines.append(f"{pad}{name} [\n")
            for index, item in enumerate(value):
                assert isinstance(item, Mapping)
                comma = "," if index < len(value) - 1 else ""
                lines += [f"{pad}{INDENT}{{\n", *_fields(item, depth + 2), f"{pad}{INDENT}}}{comma}\n"]
            lines.append(f"{pad}]\n")
        elif isinstance(value, list):
            lines.append(f"{pad}{name}: [ {', '.join(_scalar(item) for item in value)} ]\n")
        else:
            lines.append(f"{pad}{name}: {_scalar(value)}\n")
    return lines


def _scalar(value: object) -> str:
    if isinstance(value, Enum):
        if not value.isidentifier():
            raise TypeError(f"enum value {value!r} is not an identifier")
        return str(value)
    if isinstance(value, str):
        return f'"{escape(value)}"'
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} in text format")
