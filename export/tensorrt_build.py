"""ONNX bytes → a serialized FP16 (or INT8) TensorRT plan: one small, explicit code path per TensorRT major version.

The two majors build FP16 engines differently (NVIDIA, "Migrating Python Code
from TensorRT 10.x to 11.x", section "Migrating from Weak Typing to Strong
Typing"):

- **TensorRT 10.x** (weak typing): parse the FP32 ONNX file and set
  ``BuilderFlag.FP16``, so TensorRT may pick FP16 kernels layer by layer. Given
  the FP16 file instead, the network is created ``STRONGLY_TYPED`` (a 10.x
  flag): its types come from the graph, which is already FP16 inside.
- **TensorRT 11.x**: ``BuilderFlag.FP16`` and every other precision flag are
  removed and every network is strongly typed (``STRONGLY_TYPED`` is
  "retained for API compatibility but ignored", Python API, Builder page). An
  FP32 file would give an FP32 engine, so 11.x builds from the FP16 file
  (FP16 weights and compute, FP32 inputs and outputs) and refuses the other.

INT8 engines (``export --trt --int8``) build from the QDQ file of ``--int8``,
whose Q/DQ nodes say where INT8 runs (explicit quantization; NVIDIA,
"Working with Quantized Types" → "Explicit Quantization"):

- **TensorRT 10.x**: the weakly typed network with ``BuilderFlag.INT8``, which
  10.x needs to run Q/DQ layers in INT8, and ``BuilderFlag.FP16``, so the layers
  left in floating point (normalisations, Tanh) may take FP16 kernels.
- **TensorRT 11.x**: strongly typed, no flag ("use explicit quantization with
  strong typing; precision-control build flags are not required"): INT8 where
  the file has Q/DQ, FP32 elsewhere, as the file says.

The rest is the same for both and follows the Python API reference and the
developer guide's "Building an Engine": ``Builder`` → ``create_network`` →
``OnnxParser.parse`` (its error list on failure) → one optimization profile
(``set_shape`` min/opt/max) → ``IBuilderConfig`` (workspace through
``set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``,
``builder_optimization_level`` 0–5, default 3, optional timing cache) →
``build_serialized_network`` (``None`` on failure, the reason in the log).

The ``tensorrt`` module is a parameter, never imported here: the caller passes
``gantool.trt_engine.import_tensorrt()`` and the tests a small fake that
records what was asked of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.engines import Profile
from gantool.errors import BackendUnavailable, GantoolError

if TYPE_CHECKING:  # the vendored TensorRT 10.13 stubs (tests/typings) type the objects the module hands back
    import tensorrt

SUPPORTED_MAJORS = (10, 11)
DEFAULT_OPT_LEVEL = 3  # TensorRT's own default (IBuilderConfig.builder_optimization_level)
MAX_OPT_LEVEL = 5
MAX_MESSAGE = 600  # characters of TensorRT's own words kept in a one-line error
OOM_MARKERS = ("out of memory", "could not be allocated", "cudaerrormemoryallocation", "outofmemory")


@dataclass(frozen=True)
class BuildSettings:
    """What ``gantool export --trt`` lets a user tune; None leaves TensorRT's default."""

    workspace_mb: int | None = None
    opt_level: int = DEFAULT_OPT_LEVEL


@dataclass(frozen=True)
class TimingCache:
    """A ``--timing-cache`` file as read before the build: ``data`` is empty for a new one."""

    path: Path
    data: bytes


@dataclass(frozen=True)
class BuiltPlan:
    """A serialized engine and how it came to be (recorded in the sidecar's ``extra``)."""

    plan: bytes
    strongly_typed: bool
    seconds: float
    timing_cache: bytes | None  # the cache after this build (loaded entries + new ones), to save


def source_precision(major: int) -> str:
    """Which ONNX file a TensorRT major builds its FP16 engine from: 10 the FP32 one, 11 the FP16 one."""
    if major not in SUPPORTED_MAJORS:
        raise BackendUnavailable(
            f"TensorRT {major}.x is not supported: gantool builds engines with TensorRT 10.x or 11.x"
        )
    return "fp32" if major == 10 else "fp16"


def build_plan(
    trt: Any,
    onnx_bytes: bytes,
    source: str,
    profile: Profile,
    settings: BuildSettings,
    *,
    where: str,
    timing_cache: TimingCache | None = None,
) -> BuiltPlan:
    """Build a plan from ``onnx_bytes``; ``source`` is the file's precision: "fp32" or "fp16" (an FP16 engine),
    or "int8" (the QDQ file: an INT8 engine).

    ``where`` names the ONNX file in messages. Every failure is one
    GantoolError line: the parser's errors, a timing cache from another
    TensorRT or GPU, a build that returned nothing (out of GPU memory said as such).
    """
    from gantool.trt_engine import tensorrt_major

    major = tensorrt_major(trt)
    source_precision(major)  # refuses an unsupported major
    if source not in ("fp32", "fp16", "int8"):
        raise ValueError(f"source precision must be fp32, fp16 or int8, got {source!r}")
    if major == 11 and source == "fp32":
        raise GantoolError(
            f"{where} is the FP32 ONNX file: TensorRT 11 has no FP16 builder flag and would build an FP32 engine; "
            "build from the .fp16.onnx file"
        )
    recorder = _recording_logger(trt)
    builder = _builder(trt, recorder)
    weakly_typed = major == 10 and source in ("fp32", "int8")
    if weakly_typed:
        network = builder.create_network(0)  # EXPLICIT_BATCH is deprecated and ignored in 10.x: no flags
    elif major == 10:  # the FP16 file: its types are the plan (NetworkDefinitionCreationFlag, Builder page)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    else:  # 11.x: always strongly typed, no flag needed (migration guide, "After (TensorRT 11.x)")
        network = builder.create_network()
    parser: tensorrt.OnnxParser = trt.OnnxParser(network, recorder)
    if not parser.parse(onnx_bytes):
        raise GantoolError(f"TensorRT cannot parse {where}: {_parser_errors(parser)}")
    _check_input(network, profile, where)
    config = builder.create_builder_config()
    if weakly_typed and source == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # 10.x weak typing: Q/DQ layers run in INT8 only with this flag
    if weakly_typed:
        config.set_flag(trt.BuilderFlag.FP16)  # weak typing: FP16 kernels allowed where TensorRT finds them faster
    _set_profile(trt, builder, config, profile)
    if settings.workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    config.builder_optimization_level = settings.opt_level
    if timing_cache is not None:
        _attach_timing_cache(config, timing_cache)
    start = time.perf_counter()
    try:
        plan = builder.build_serialized_network(network, config)
    except (RuntimeError, MemoryError) as exc:  # the bindings raise for some failures instead of returning None
        recorder.errors.append(str(exc) or type(exc).__name__)
        plan = None
    seconds = time.perf_counter() - start
    if plan is None:  # documented failure value; TensorRT said why through the logger
        raise GantoolError(_build_failure(recorder.errors, where))
    cache = bytes(config.get_timing_cache().serialize()) if timing_cache is not None else None
    return BuiltPlan(plan=bytes(plan), strongly_typed=not weakly_typed, seconds=seconds, timing_cache=cache)


def _recording_logger(trt: Any) -> Any:
    """An ``ILogger`` that keeps errors and drops the rest (TensorRT would print them to stderr).

    Subclassing ``trt.ILogger`` with an explicit base ``__init__`` is the
    documented way to a custom logger (Python API, Core → Logger).
    """

    class RecordingLogger(trt.ILogger):  # type: ignore[misc]  # the base class comes from the module passed in
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(msg)

    return RecordingLogger()


def _builder(trt: Any, recorder: Any) -> tensorrt.Builder:
    """``trt.Builder``; without a usable GPU the bindings fail here, which becomes one line."""
    try:
        builder: tensorrt.Builder | None = trt.Builder(recorder)
    except (TypeError, RuntimeError) as exc:  # pybind11: "factory function returned nullptr"
        recorder.errors.append(str(exc))
        builder = None
    if builder is None:
        said = _clip("; ".join(recorder.errors)) or "no reason given"
        raise BackendUnavailable(f"TensorRT cannot create a builder, is there a usable NVIDIA GPU? ({said})")
    return builder


def _parser_errors(parser: tensorrt.OnnxParser) -> str:
    """Every parser error as ``desc (node N 'name', Op)``, joined with "; " and clipped to one readable line."""
    parts = []
    for index in range(parser.num_errors):
        error: tensorrt.ParserError = parser.get_error(index)
        node = error.node()
        where = f" (node {node} {error.node_name()!r}, {error.node_operator()})" if node >= 0 else ""
        parts.append(f"{error.desc()}{where}")
    return _clip("; ".join(parts)) if parts else "no error reported"


def _check_input(network: tensorrt.INetworkDefinition, profile: Profile, where: str) -> None:
    """The parsed network takes exactly the profile's one input (a foreign ONNX file would not)."""
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    if names != [profile.input_name]:
        raise GantoolError(f"{where} has inputs {names}, expected one named {profile.input_name!r}")


def _set_profile(trt: Any, builder: tensorrt.Builder, config: tensorrt.IBuilderConfig, profile: Profile) -> None:
    """One optimization profile: min/opt/max of the one dynamic input (IOptimizationProfile.set_shape)."""
    optimization: tensorrt.IOptimizationProfile = builder.create_optimization_profile()
    shapes = [trt.Dims(list(shape)) for shape in (profile.min, profile.opt, profile.max)]
    optimization.set_shape(profile.input_name, *shapes)
    if config.add_optimization_profile(optimization) < 0:  # returns the profile's index, -1 if invalid
        raise GantoolError(f"TensorRT refused the optimization profile {profile.to_dict()}")


def _attach_timing_cache(config: tensorrt.IBuilderConfig, cache: TimingCache) -> None:
    """Load ``--timing-cache`` into the build; a cache TensorRT cannot use is refused, never silently replaced.

    ``create_timing_cache(b"")`` starts an empty cache; ``set_timing_cache(...,
    ignore_mismatch=False)`` returns False for a cache written on another GPU
    (ITimingCache / IBuilderConfig docs); a cache from another TensorRT version
    or a file that is no cache fails to load.
    """
    try:
        loaded: tensorrt.ITimingCache | None = config.create_timing_cache(cache.data)
        attached = loaded is not None and config.set_timing_cache(loaded, False)
    except (RuntimeError, TypeError, ValueError):
        attached = False
    if not attached:
        raise GantoolError(
            f"--timing-cache {cache.path} was written by another TensorRT version or GPU, or is not a timing cache: "
            "delete it (a new one is written) or pass another file"
        )


def _build_failure(errors: list[str], where: str) -> str:
    said = "; ".join(errors)
    if any(marker in said.lower() for marker in OOM_MARKERS):
        return (
            f"out of GPU memory while building the engine for {where}: "
            "try a smaller --max-batch (or --max-size), or a smaller --workspace-mb"
        )
    return f"TensorRT could not build an engine from {where}: {_clip(said) or 'no reason given'}"


def _clip(text: str) -> str:
    """One line of at most MAX_MESSAGE characters."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
