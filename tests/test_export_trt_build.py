"""The TensorRT builder: one code path per major version, and every failure as one line.

Driven by a fake ``tensorrt`` module (tests/fake_tensorrt.py) that records
what was asked of it: 10.x sets ``BuilderFlag.FP16`` on the FP32 network, 11.x
has no such flag and builds the FP16 file, strongly typed; INT8 engines come
from the QDQ file (10.x: INT8 and FP16 flags, 11.x: strongly typed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_tensorrt import ParserError, fake_tensorrt

from gantool.engines import Profile
from gantool.errors import BackendUnavailable, GantoolError
from gantool.export.tensorrt_build import BuildSettings, TimingCache, build_plan

GAN_PROFILE = Profile("z", "images", (1, 8), (8, 8), (64, 8))


def test_tensorrt_10_sets_the_fp16_flag_on_the_fp32_network() -> None:
    trt = fake_tensorrt("10.13.0.35")
    built = build_plan(trt, b"fp32-onnx", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")
    assert built.plan == b"fp32-onnx" and built.strongly_typed is False and built.timing_cache is None
    assert trt.calls.parsed == [b"fp32-onnx"] and trt.calls.network_flags == [(0,)]
    assert trt.calls.builder_flags == ["FP16"] and trt.calls.memory_pools == {} and trt.calls.opt_level == 3
    assert trt.calls.profile == ("z", (1, 8), (8, 8), (64, 8))


def test_tensorrt_10_builds_an_fp16_file_strongly_typed() -> None:
    trt = fake_tensorrt("10.13.0.35")
    built = build_plan(trt, b"fp16-onnx", "fp16", GAN_PROFILE, BuildSettings(), where="generator.fp16.onnx")
    assert built.strongly_typed is True
    assert trt.calls.network_flags == [(1 << 1,)] and trt.calls.builder_flags == []  # STRONGLY_TYPED is bit 1


def test_tensorrt_11_sets_no_precision_flag_and_requires_the_fp16_file() -> None:
    trt = fake_tensorrt("11.0.0.1")
    assert not hasattr(trt, "BuilderFlag")  # as in 11.x: touching BuilderFlag.FP16 would fail
    built = build_plan(trt, b"fp16-onnx", "fp16", GAN_PROFILE, BuildSettings(), where="generator.fp16.onnx")
    assert built.strongly_typed is True and trt.calls.network_flags == [()] and trt.calls.builder_flags == []
    with pytest.raises(GantoolError, match=r"generator.onnx is the FP32 ONNX file.*\.fp16\.onnx"):
        build_plan(trt, b"fp32-onnx", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")
    assert trt.calls.parsed == [b"fp16-onnx"]  # the FP32 bytes were never parsed


def test_an_int8_engine_comes_from_the_qdq_file_with_10_s_int8_flag_or_11_s_strong_typing() -> None:
    ten = fake_tensorrt("10.13.0.35")
    built = build_plan(ten, b"qdq-onnx", "int8", GAN_PROFILE, BuildSettings(), where="generator.int8.onnx")
    assert built.strongly_typed is False and ten.calls.network_flags == [(0,)]
    assert ten.calls.builder_flags == ["INT8", "FP16"]  # INT8 for the Q/DQ layers, FP16 allowed for the rest
    eleven = fake_tensorrt("11.0.0.1")
    built = build_plan(eleven, b"qdq-onnx", "int8", GAN_PROFILE, BuildSettings(), where="generator.int8.onnx")
    assert built.strongly_typed is True and eleven.calls.network_flags == [()] and eleven.calls.builder_flags == []


def test_other_majors_are_refused() -> None:
    with pytest.raises(BackendUnavailable, match="TensorRT 9.x is not supported"):
        build_plan(fake_tensorrt("9.3.0"), b"x", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")


def test_workspace_and_optimization_level_reach_the_config() -> None:
    trt = fake_tensorrt()
    build_plan(trt, b"x", "fp32", GAN_PROFILE, BuildSettings(workspace_mb=256, opt_level=5), where="g.onnx")
    assert trt.calls.memory_pools == {"WORKSPACE": 256 << 20} and trt.calls.opt_level == 5


def test_every_parser_error_is_listed_on_one_line() -> None:
    errors = (ParserError("unsupported op", 3, "/conv/Conv", "Conv"), ParserError("bad graph"))
    trt = fake_tensorrt(parse_errors=errors)
    with pytest.raises(GantoolError) as raised:
        build_plan(trt, b"x", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")
    assert str(raised.value) == (
        "TensorRT cannot parse generator.onnx: unsupported op (node 3 '/conv/Conv', Conv); bad graph"
    )


def test_a_build_returning_none_is_one_line_with_tensorrt_s_reason() -> None:
    trt = fake_tensorrt(build_log=("[graph.cpp] no implementation obeys reformatting-free rules",))
    with pytest.raises(GantoolError) as raised:
        build_plan(trt, b"x", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")
    assert str(raised.value) == (
        "TensorRT could not build an engine from generator.onnx: "
        "[graph.cpp] no implementation obeys reformatting-free rules"
    )
    oom = fake_tensorrt(build_log=("Requested amount of GPU memory (8589934592 bytes) could not be allocated.",))
    with pytest.raises(GantoolError, match="out of GPU memory while building.*smaller --max-batch"):
        build_plan(oom, b"x", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")


def test_no_gpu_fails_where_the_builder_is_created() -> None:
    with pytest.raises(BackendUnavailable, match="cannot create a builder.*CUDA initialization failure"):
        build_plan(fake_tensorrt(no_gpu=True), b"x", "fp32", GAN_PROFILE, BuildSettings(), where="generator.onnx")


def test_the_timing_cache_is_loaded_and_the_merged_cache_returned(tmp_path: Path) -> None:
    trt = fake_tensorrt()
    cache = TimingCache(tmp_path / "cache.bin", b"earlier")
    built = build_plan(trt, b"x", "fp32", GAN_PROFILE, BuildSettings(), where="g.onnx", timing_cache=cache)
    assert trt.calls.cache_loaded == b"earlier" and built.timing_cache == b"earlier+timed"
    other = TimingCache(tmp_path / "cache.bin", b"other-gpu entries")
    with pytest.raises(GantoolError, match="cache.bin was written by another TensorRT version or GPU"):
        build_plan(trt, b"x", "fp32", GAN_PROFILE, BuildSettings(), where="g.onnx", timing_cache=other)
