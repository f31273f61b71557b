"""A small, honest stand-in for the ``tensorrt`` module: the builder API gantool calls, and a record of the calls.

Only what ``export/tensorrt_build.py`` uses, with the documented shapes of
TensorRT 10.x and 11.x: 11 has no ``BuilderFlag`` (its precision flags are
removed), both have ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, a custom
logger subclasses ``ILogger``. The "plan" it builds is the ONNX bytes it
parsed, so a test can run that "engine" with onnxruntime (``OnnxRunner``) and
the export's parity check compares real numbers.

Knobs: ``parse_errors`` (the parser fails with these), ``build_log`` (messages
the builder logs as errors before returning None), ``no_gpu`` (``Builder()``
fails as the bindings do without a GPU).
"""

from __future__ import annotations

import importlib.machinery
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ParserError:
    """``tensorrt.ParserError``: desc() and the failing node's index, name and operator."""

    text: str
    index: int = -1
    name: str = ""
    op: str = ""

    def desc(self) -> str:
        return self.text

    def node(self) -> int:
        return self.index

    def node_name(self) -> str:
        return self.name

    def node_operator(self) -> str:
        return self.op


@dataclass
class Calls:
    """What gantool asked of TensorRT."""

    network_flags: list[tuple[int, ...]] = field(default_factory=list)  # args of each create_network call
    parsed: list[bytes] = field(default_factory=list)
    builder_flags: list[str] = field(default_factory=list)
    memory_pools: dict[str, int] = field(default_factory=dict)
    opt_level: int | None = None
    profile: tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None
    cache_loaded: bytes | None = None


def fake_tensorrt(
    version: str = "10.13.0.35",
    *,
    parse_errors: tuple[ParserError, ...] = (),
    build_log: tuple[str, ...] = (),
    no_gpu: bool = False,
    input_name: str = "z",  # the network's input when the bytes parsed are not ONNX
) -> Any:
    """A module object named ``tensorrt`` (importable through ``sys.modules``) with ``.calls`` recording each build."""
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    calls = trt.calls = Calls()

    class ILogger:
        Severity = types.SimpleNamespace(INTERNAL_ERROR=0, ERROR=1, WARNING=2, INFO=3, VERBOSE=4)

        def __init__(self) -> None:
            pass

    class Cache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return self.data + b"+timed"

    class Config:
        builder_optimization_level = 3

        def set_flag(self, flag: str) -> None:
            calls.builder_flags.append(flag)

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            calls.memory_pools[pool] = size

        def add_optimization_profile(self, profile: Any) -> int:
            calls.profile = profile.shape
            return 0

        def create_timing_cache(self, data: bytes) -> Cache:
            return Cache(bytes(data))

        def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
            calls.cache_loaded = cache.data
            self.cache = cache
            return not cache.data.startswith(b"other-gpu") or ignore_mismatch

        def get_timing_cache(self) -> Cache:
            return self.cache

    class Network:
        def __init__(self) -> None:
            self.inputs: list[str] = []

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, index: int) -> Any:
            return types.SimpleNamespace(name=self.inputs[index])

    class OptimizationProfile:
        shape: Any = None

        def set_shape(self, name: str, low: Any, opt: Any, high: Any) -> None:
            self.shape = (name, tuple(low), tuple(opt), tuple(high))

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger) -> None:
            self.network, self.errors = network, list(parse_errors)

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> ParserError:
            return self.errors[index]

        def parse(self, model: bytes) -> bool:
            calls.parsed.append(bytes(model))
            self.network.inputs, self.network.onnx = _inputs(bytes(model)) or [input_name], bytes(model)
            return not self.errors

    class Builder:
        def __init__(self, logger: ILogger) -> None:
            if no_gpu:
                logger.log(ILogger.Severity.ERROR, "CUDA initialization failure with error: 35")
                raise TypeError("pybind11::init(): factory function returned nullptr")
            self.logger = logger

        def create_network(self, *flags: int) -> Network:
            calls.network_flags.append(flags)
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            calls.opt_level = config.builder_optimization_level
            for message in build_log:
                self.logger.log(ILogger.Severity.ERROR, message)
            return None if build_log else network.onnx

    trt.ILogger, trt.Builder, trt.OnnxParser, trt.Dims = ILogger, Builder, OnnxParser, tuple
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    if version.startswith("10."):  # 11.x removed BuilderFlag.FP16 and every other precision flag
        trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8")
    return trt


def _inputs(model: bytes) -> list[str]:
    """The graph's input names when ``model`` is ONNX (the tests' placeholder bytes are not)."""
    import onnx

    try:
        return [value.name for value in onnx.load_from_string(model).graph.input]
    except Exception:  # noqa: BLE001 - protobuf's DecodeError: not ONNX, use the knob
        return []


class OnnxRunner:
    """Stands in for ``gantool.trt_engine.EngineRunner``: the fake plan is ONNX bytes, run here with onnxruntime."""

    offset = 0.0  # added to every output: a test sets it to make parity fail

    def __init__(self, plan: bytes, profile: Any, *, where: str, use_graphs: bool = True) -> None:
        import onnxruntime as ort

        self.profile = profile
        self.session = ort.InferenceSession(plan, providers=["CPUExecutionProvider"])

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self.profile.min[0] <= len(batch) <= self.profile.max[0], "parity input outside the profile"
        (out,) = self.session.run([self.profile.output_name], {self.profile.input_name: batch})
        return out + self.offset

    def close(self) -> None:
        self.session = None
