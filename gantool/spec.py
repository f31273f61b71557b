"""The model spec: the one contract between training, export, runtime and benchmarks.

A spec is a small JSON document describing a generator well enough to rebuild
it, feed it and decode its output: the kind of model, the architecture and its
hyper-parameters, the latent size, the image geometry and the value range of
its output. It travels inside every artifact (safetensors metadata, ONNX
``metadata_props``, the JSON beside an engine), so a stage needs only the file
in hand, never the flags an earlier stage was run with.

Specs come from files users are handed, so parsing is strict: unknown keys
are refused, every number is bounded, and nothing in a spec is ever executed
or used as a path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from gantool.errors import ArtifactError

SPEC_FORMAT = "gantool.spec"
SPEC_VERSION = 1
METADATA_KEY = "gantool.spec"  # key under which artifacts store the spec JSON
PRECISION_KEY = "gantool.precision"  # ONNX metadata beside the spec: which variant the file is (fp32, fp16, int8)
QUALITY_KEY = "gantool.quality"  # ONNX metadata / engine sidecar: the quality verdict a lower precision passed
MAX_SPEC_BYTES = 64 * 1024

KINDS = ("gan", "cyclegan")
ARCHS_BY_KIND = {"gan": ("mlp", "dcgan"), "cyclegan": ("resnet",)}
# Allowed architecture hyper-parameters and their bounds, per architecture.
ARCH_PARAM_BOUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "mlp": {"hidden": (1, 16384)},
    "dcgan": {"ngf": (1, 1024)},
    "resnet": {"ngf": (1, 1024), "blocks": (1, 64)},
}
MAX_LATENT_DIM = 4096
MAX_IMAGE_SIDE = 4096
# A ResNet translator downsamples twice by 2, so its sides must divide by 4 to come back unchanged,
# and its residual blocks reflection-pad the H/4×W/4 maps by 1, which needs at least 2 pixels there.
SIZE_MULTIPLE = 4
MIN_SIDE = 8


def fits_translator(height: int, width: int) -> bool:
    """Whether a ResNet translator can take a height×width image as it is (see SIZE_MULTIPLE, MIN_SIDE)."""
    return all(side >= MIN_SIDE and side % SIZE_MULTIPLE == 0 for side in (height, width))


def dcgan_geometry_ok(height: int, width: int) -> bool:
    """Whether a DCGAN generator can make height×width: a square whose side halves (while even and above 7)
    down to a base of 3..8, at least once, as gantool.models builds it (28 → 7, 32 → 4, 64 → 4)."""
    base = height
    while base % 2 == 0 and base > 7:
        base //= 2
    return height == width and 3 <= base <= 8 and base < height


@dataclass(frozen=True)
class ModelSpec:
    """What a generator is: enough to rebuild it, feed it and read its output.

    ``value_range`` is the output range of the network: an output x maps to
    the pixel value ``(x - lo) / (hi - lo) * 255``, and translator inputs are
    normalised the inverse way.
    """

    kind: str
    arch: str
    arch_params: dict[str, Any]
    channels: int
    height: int
    width: int
    latent_dim: int | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)
    direction: str | None = None
    domains: tuple[str, str] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one output image, as the network produces it."""
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["value_range"] = list(self.value_range)
        if self.domains is not None:
            data["domains"] = list(self.domains)
        return {"format": SPEC_FORMAT, "version": SPEC_VERSION, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        """Build a spec from untrusted data, refusing anything not in the schema."""
        if not isinstance(data, dict):
            raise ArtifactError("model spec is not a JSON object")
        data = dict(data)
        if data.pop("format", None) != SPEC_FORMAT:
            raise ArtifactError("not a gantool model spec (missing or wrong 'format')")
        version = data.pop("version", None)
        if version != SPEC_VERSION:
            raise ArtifactError(f"model spec version {version!r} is not supported (expected {SPEC_VERSION})")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ArtifactError(f"model spec has unknown keys: {', '.join(unknown)}")
        missing = sorted(k for k in ("kind", "arch", "arch_params", "channels", "height", "width") if k not in data)
        if missing:
            raise ArtifactError(f"model spec lacks keys: {', '.join(missing)}")
        if isinstance(data.get("value_range"), list):
            data["value_range"] = tuple(data["value_range"])
        if isinstance(data.get("domains"), list):
            data["domains"] = tuple(data["domains"])
        try:
            return cls(**data)
        except TypeError as exc:  # a wrongly typed field that _validate let through
            raise ArtifactError(f"invalid model spec: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        if len(text) > MAX_SPEC_BYTES:
            raise ArtifactError(f"model spec is larger than {MAX_SPEC_BYTES} bytes")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"model spec is not valid JSON: {exc}") from None
        except RecursionError:  # "[[[[..." nested deeper than the parser's stack: 64 KiB is enough for that
            raise ArtifactError("model spec is not valid JSON: nested too deeply") from None
        return cls.from_dict(data)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ArtifactError(f"model spec field {name!r} must be an integer in [{low}, {high}], got {value!r}")


def _validate(spec: ModelSpec) -> None:
    """Check every field against the schema; raise ArtifactError naming the first bad one."""
    if spec.kind not in KINDS:
        raise ArtifactError(f"model spec kind {spec.kind!r} is not one of {', '.join(KINDS)}")
    if spec.arch not in ARCHS_BY_KIND[spec.kind]:
        raise ArtifactError(f"model spec arch {spec.arch!r} is not valid for kind {spec.kind!r}")
    _validate_arch_params(spec.arch, spec.arch_params)
    if not _is_int(spec.channels) or spec.channels not in (1, 3):
        raise ArtifactError(f"model spec channels must be 1 or 3, got {spec.channels!r}")
    _check_int("height", spec.height, 4, MAX_IMAGE_SIDE)
    _check_int("width", spec.width, 4, MAX_IMAGE_SIDE)
    if spec.arch == "dcgan" and not dcgan_geometry_ok(spec.height, spec.width):
        raise ArtifactError(
            f"model spec {spec.height}×{spec.width} cannot be a dcgan's output: it needs a square side that halves "
            "down to 3..8 (28, 32, 64…)"
        )
    if spec.kind == "gan":
        _check_int("latent_dim", spec.latent_dim, 1, MAX_LATENT_DIM)
    elif spec.latent_dim is not None:
        raise ArtifactError("model spec latent_dim must be null for a translator")
    lo_hi = spec.value_range
    if (
        not isinstance(lo_hi, tuple)
        or len(lo_hi) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lo_hi)
        or not -1e6 < lo_hi[0] < lo_hi[1] < 1e6
    ):
        raise ArtifactError(f"model spec value_range must be [low, high] with low < high, got {lo_hi!r}")
    if spec.direction is not None and spec.direction not in ("a2b", "b2a"):
        raise ArtifactError(f"model spec direction must be a2b, b2a or null, got {spec.direction!r}")
    if spec.domains is not None and (
        not isinstance(spec.domains, tuple)
        or len(spec.domains) != 2
        or not all(isinstance(d, str) and 0 < len(d) <= 64 for d in spec.domains)
    ):
        raise ArtifactError("model spec domains must be two short names")
    if not isinstance(spec.provenance, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, (str, int, float, bool))) for k, v in spec.provenance.items()
    ):
        raise ArtifactError("model spec provenance must map names to plain values")


def _validate_arch_params(arch: str, params: Any) -> None:
    bounds = ARCH_PARAM_BOUNDS[arch]
    if not isinstance(params, dict):
        raise ArtifactError("model spec arch_params must be an object")
    unknown = sorted(set(params) - set(bounds))
    missing = sorted(set(bounds) - set(params))
    if unknown or missing:
        raise ArtifactError(f"model spec arch_params for {arch!r} must have exactly: {', '.join(sorted(bounds))}")
    for name, (low, high) in bounds.items():
        value = params[name]
        if name == "hidden":  # the MLP's hidden widths, a short list
            if not isinstance(value, list) or not 1 <= len(value) <= 8:
                raise ArtifactError("model spec arch_params.hidden must be a list of 1 to 8 widths")
            for width in value:
                _check_int("arch_params.hidden[]", width, low, high)
        else:
            _check_int(f"arch_params.{name}", value, low, high)
