"""TensorRT engines without TensorRT: profiles, batch splitting, the JSON sidecar and its compatibility rules.

An engine plan is opaque and tied to the machine that built it: the TensorRT
version (plans are not portable across versions) and the GPU's compute
capability. So every ``<stem>.fp16.engine`` travels with a
``<stem>.fp16.engine.json`` sidecar saying what it is (the model spec), what
it takes (the optimization profile) and where it was built. The runtime reads
the sidecar and compares it with the machine *before* handing the plan to
TensorRT, so a mismatch is one line that says "rebuild", not a crash inside
``deserialize_cuda_engine``.

Everything here is pure logic on numbers and JSON: the builder (export) and
the backend (runtime) share it, and it is unit-tested on machines without a
GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantool.errors import ArtifactError, UsageError
from gantool.spec import MAX_IMAGE_SIDE, MIN_SIDE, SIZE_MULTIPLE, ModelSpec

SIDECAR_FORMAT = "gantool.engine"
SIDECAR_VERSION = 1
SIDECAR_SUFFIX = ".json"  # appended to the engine's name: generator.fp16.engine.json
MAX_SIDECAR_BYTES = 256 * 1024
MAX_BATCH = 4096
DEFAULT_BATCHES = (1, 8, 64)  # min, opt, max
REBUILD_HINT = "rebuild it here with gantool export --trt"

Shape = tuple[int, ...]
Size = tuple[int, int]  # (height, width)


def sidecar_path(engine: Path) -> Path:
    """``generator.fp16.engine`` → ``generator.fp16.engine.json``."""
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def parse_size(text: str) -> Size:
    """``256`` → (256, 256); ``192x256`` → (192, 256); UsageError otherwise."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        raise UsageError(f"image size {text!r} is not N or HxW") from None
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2:
        raise UsageError(f"image size {text!r} is not N or HxW")
    return sides[0], sides[1]


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile for the engine's one input: min ≤ opt ≤ max, axis by axis."""

    input_name: str
    output_name: str
    min: Shape
    opt: Shape
    max: Shape

    @property
    def max_batch(self) -> int:
        return self.max[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_name,
            "output": self.output_name,
            "min": list(self.min),
            "opt": list(self.opt),
            "max": list(self.max),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        if not isinstance(data, dict) or set(data) != {"input", "output", "min", "opt", "max"}:
            raise ArtifactError("engine sidecar profile must have exactly: input, output, min, opt, max")
        names = data["input"], data["output"]
        if not all(isinstance(name, str) and 0 < len(name) <= 64 for name in names):
            raise ArtifactError("engine sidecar profile input/output must be short names")
        shapes = [_shape(data[key]) for key in ("min", "opt", "max")]
        if len({len(shape) for shape in shapes}) != 1 or not all(
            lo <= mid <= hi for lo, mid, hi in zip(*shapes, strict=True)
        ):
            raise ArtifactError("engine sidecar profile must have min ≤ opt ≤ max on every axis")
        return cls(names[0], names[1], *shapes)

    def check_item_shape(self, shape: Shape) -> None:
        """Refuse an input whose non-batch axes lie outside the profile (the batch is split, see split_batch)."""
        if len(shape) != len(self.min):
            raise UsageError(f"the engine takes rank-{len(self.min)} inputs, got shape {shape}")
        for axis in range(1, len(shape)):
            if not self.min[axis] <= shape[axis] <= self.max[axis]:
                if len(shape) == 4:
                    lo, hi = "×".join(map(str, self.min[2:])), "×".join(map(str, self.max[2:]))
                    raise UsageError(
                        f"a {shape[2]}×{shape[3]} image is outside the engine's profile ({lo} to {hi}): "
                        "rebuild with gantool export --trt --min-size/--max-size"
                    )
                raise UsageError(f"input shape {shape} does not match the engine's {self.min[1:]} inputs")


def profile_for(
    spec: ModelSpec,
    input_name: str,
    output_name: str,
    batches: tuple[int, int, int] = DEFAULT_BATCHES,
    sizes: tuple[Size | None, Size | None, Size | None] = (None, None, None),
) -> Profile:
    """The profile ``gantool export --trt`` builds for, from its flags; UsageError for impossible ones.

    Batches must satisfy 1 ≤ min ≤ opt ≤ max ≤ MAX_BATCH. A GAN's image size is
    fixed by its architecture, so size flags are refused for one. A translator
    defaults to its native size for all three (the fastest engine for the size
    it was trained at); a size left out falls back to opt, then to the native
    size. Every side must be a multiple of 4, at least 8, and min ≤ opt ≤ max.
    """
    low, opt, high = batches
    if not 1 <= low <= opt <= high <= MAX_BATCH:
        raise UsageError(f"batch sizes must satisfy 1 ≤ min ≤ opt ≤ max ≤ {MAX_BATCH}, got {low}/{opt}/{high}")
    if spec.latent_dim is not None:
        if any(size is not None for size in sizes):
            raise UsageError(
                "--min-size/--opt-size/--max-size apply to CycleGAN translators only: a GAN's size is fixed"
            )
        z = spec.latent_dim
        return Profile(input_name, output_name, (low, z), (opt, z), (high, z))
    native = (spec.height, spec.width)
    opt_size = sizes[1] or native
    min_size, max_size = sizes[0] or opt_size, sizes[2] or opt_size
    for name, (height, width) in (("min", min_size), ("opt", opt_size), ("max", max_size)):
        for side in (height, width):
            if side < MIN_SIDE or side % SIZE_MULTIPLE or side > MAX_IMAGE_SIDE:
                raise UsageError(
                    f"--{name}-size {height}x{width}: sides must be multiples of {SIZE_MULTIPLE} "
                    f"between {MIN_SIDE} and {MAX_IMAGE_SIDE}"
                )
    if not all(lo <= mid <= hi for lo, mid, hi in zip(min_size, opt_size, max_size, strict=True)):
        raise UsageError(f"image sizes must satisfy min ≤ opt ≤ max, got {min_size}, {opt_size}, {max_size}")
    c = spec.channels
    return Profile(input_name, output_name, (low, c, *min_size), (opt, c, *opt_size), (high, c, *max_size))


def split_batch(count: int, max_batch: int) -> list[tuple[int, int]]:
    """(start, stop) chunks of at most ``max_batch`` covering ``range(count)``: how a big batch meets the profile."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    return [(start, min(start + max_batch, count)) for start in range(0, count, max_batch)]


@dataclass(frozen=True)
class MachineFacts:
    """What an engine plan depends on, as seen on one machine (from TensorRT and the CUDA runtime)."""

    tensorrt_version: str  # "10.13.0.35"
    gpu_name: str  # "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "9.0"
    cuda_driver: str  # CUDA version the driver supports, "12.9"
    cuda_runtime: str  # CUDA runtime TensorRT runs on, "12.9"

    def to_dict(self) -> dict[str, str]:
        return {
            "tensorrt_version": self.tensorrt_version,
            "gpu_name": self.gpu_name,
            "compute_capability": self.compute_capability,
            "cuda_driver": self.cuda_driver,
            "cuda_runtime": self.cuda_runtime,
        }

    @classmethod
    def from_dict(cls, data: Any) -> MachineFacts:
        keys = set(cls.__dataclass_fields__)
        if not isinstance(data, dict) or set(data) != keys:
            raise ArtifactError(f"engine sidecar 'built_on' must have exactly: {', '.join(sorted(keys))}")
        if not all(isinstance(value, str) and len(value) <= 128 for value in data.values()):
            raise ArtifactError("engine sidecar 'built_on' values must be short strings")
        return cls(**data)


@dataclass(frozen=True)
class EngineInfo:
    """The sidecar: what the engine is, what it takes, where it was built, and what it was built from."""

    spec: ModelSpec
    precision: str  # "fp16", or "int8" (built from the QDQ file of export --int8)
    profile: Profile
    built_on: MachineFacts
    source_onnx: str  # file name only: never opened from here
    source_sha256: str
    engine_sha256: str
    max_abs_diff: float  # the parity check at build time, against PyTorch FP32
    extra: dict[str, Any] = field(default_factory=dict)  # builder settings; an INT8 engine's quality verdict

    def to_json(self) -> str:
        data = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "spec": self.spec.to_dict(),
            "precision": self.precision,
            "profile": self.profile.to_dict(),
            "built_on": self.built_on.to_dict(),
            "source_onnx": self.source_onnx,
            "source_sha256": self.source_sha256,
            "engine_sha256": self.engine_sha256,
            "max_abs_diff": self.max_abs_diff,
            "extra": self.extra,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: Path | str = "engine sidecar") -> EngineInfo:
        """Parse an untrusted sidecar strictly: unknown keys, wrong types or absurd values are refused."""
        if len(text) > MAX_SIDECAR_BYTES:
            raise ArtifactError(f"{where} is larger than {MAX_SIDECAR_BYTES} bytes: not a gantool engine sidecar")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." nested too deeply
            raise ArtifactError(f"{where} is not valid JSON") from None
        try:
            return cls._from_dict(data)
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: {exc}") from None

    @classmethod
    def _from_dict(cls, data: Any) -> EngineInfo:
        keys = {
            "format", "version", "spec", "precision", "profile", "built_on",
            "source_onnx", "source_sha256", "engine_sha256", "max_abs_diff", "extra",
        }  # fmt: skip
        if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
            raise ArtifactError("not a gantool engine sidecar (missing or wrong 'format')")
        if data.get("version") != SIDECAR_VERSION or isinstance(data.get("version"), bool):  # True == 1 in Python
            raise ArtifactError(
                f"sidecar version {data.get('version')!r} is not supported (expected {SIDECAR_VERSION})"
            )
        if set(data) != keys:
            unknown, missing = sorted(set(data) - keys), sorted(keys - set(data))
            raise ArtifactError(f"sidecar keys differ from the schema (unknown: {unknown}, missing: {missing})")
        if data["precision"] not in ("fp16", "fp32", "int8"):
            raise ArtifactError(f"sidecar precision must be fp16, fp32 or int8, got {data['precision']!r}")
        for key in ("source_sha256", "engine_sha256"):
            if not _is_sha256(data[key]):
                raise ArtifactError(f"sidecar {key} is not a sha256 hex digest")
        if not isinstance(data["source_onnx"], str) or not 0 < len(data["source_onnx"]) <= 255:
            raise ArtifactError("sidecar source_onnx must be a file name")
        diff = data["max_abs_diff"]
        if not isinstance(diff, (int, float)) or isinstance(diff, bool) or not 0 <= diff < 1e6:
            raise ArtifactError("sidecar max_abs_diff must be a non-negative number")
        extra = data["extra"]
        if not isinstance(extra, dict) or not all(
            isinstance(k, str) and (_plain(v) or isinstance(v, dict) and all(map(_plain, v.values())))
            for k, v in extra.items()
        ):
            raise ArtifactError("sidecar extra must map names to plain values (or one level of them: the verdict)")
        spec = ModelSpec.from_dict(data["spec"])
        profile = Profile.from_dict(data["profile"])
        _check_profile_matches_spec(profile, spec)
        return cls(
            spec=spec,
            precision=data["precision"],
            profile=profile,
            built_on=MachineFacts.from_dict(data["built_on"]),
            source_onnx=data["source_onnx"],
            source_sha256=data["source_sha256"],
            engine_sha256=data["engine_sha256"],
            max_abs_diff=float(diff),
            extra=extra,
        )


@dataclass(frozen=True)
class Compatibility:
    """The verdict on running an engine here: errors refuse it, warnings are said and the engine runs."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def compatibility(built: MachineFacts, here: MachineFacts) -> Compatibility:
    """Whether a plan built on ``built`` can run ``here``.

    Refused (TensorRT would reject the plan or run kernels compiled for another
    architecture): a different TensorRT major.minor.patch (plans are not
    portable across versions unless built version-compatible, which gantool
    does not do) or a different compute capability. Warned: another GPU model
    of the same compute capability (it runs, but tactics were timed on the
    other GPU), or a driver supporting an older CUDA than at build time.
    """
    errors, warnings = [], []
    if _release(built.tensorrt_version) != _release(here.tensorrt_version):
        errors.append(f"built with TensorRT {built.tensorrt_version}, this machine has {here.tensorrt_version}")
    if built.compute_capability != here.compute_capability:
        errors.append(
            f"built for compute capability {built.compute_capability} ({built.gpu_name}), "
            f"this GPU is {here.compute_capability} ({here.gpu_name})"
        )
    elif built.gpu_name != here.gpu_name:
        warnings.append(f"built on {built.gpu_name}, running on {here.gpu_name}: it runs, but may not be the fastest")
    if _version_tuple(here.cuda_driver) < _version_tuple(built.cuda_driver):
        warnings.append(
            f"built with a driver for CUDA {built.cuda_driver}, this driver supports CUDA {here.cuda_driver}"
        )
    return Compatibility(tuple(errors), tuple(warnings))


def _release(version: str) -> tuple[int, ...]:
    """TensorRT's major.minor.patch (the build number after it does not change the plan format)."""
    return _version_tuple(version)[:3]


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _shape(value: Any) -> Shape:
    if (
        not isinstance(value, list)
        or not 2 <= len(value) <= 4
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= max(MAX_BATCH, MAX_IMAGE_SIDE) for v in value
        )
    ):
        raise ArtifactError("engine sidecar profile shapes must be lists of 2 to 4 positive integers")
    return tuple(value)


def _check_profile_matches_spec(profile: Profile, spec: ModelSpec) -> None:
    """The profile's fixed axes must be the spec's: a sidecar that contradicts itself is refused."""
    if spec.latent_dim is not None:
        fixed_ok = all(len(s) == 2 and s[1] == spec.latent_dim for s in (profile.min, profile.opt, profile.max))
    else:
        fixed_ok = all(len(s) == 4 and s[1] == spec.channels for s in (profile.min, profile.opt, profile.max))
    if not fixed_ok:
        raise ArtifactError("engine sidecar profile does not match its model spec")


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(ch in "0123456789abcdef" for ch in value)
