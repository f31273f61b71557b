"""gantool export --trt: FP16 TensorRT engines, or one clear line and nothing written.

Two layers, from the outside in (the builder itself: test_export_trt_build.py):
- refusals through the CLI, which need no TensorRT: exit code, one stderr line,
  the run dir untouched;
- the whole export with a fake ``tensorrt`` module (tests/fake_tensorrt.py)
  whose "plan" is the ONNX it parsed, run by onnxruntime: sources, parity,
  sidecars, all-or-nothing writes, the timing cache.
Plus one end-to-end build with real TensorRT, wherever it and a GPU exist.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_tensorrt import OnnxRunner, fake_tensorrt

from conftest import make_translator_run
from gantool import trt_engine
from gantool.artifacts import onnx_path_for, run_checkpoints
from gantool.checkpoint import load_generator
from gantool.cuda import gpus
from gantool.engines import EngineInfo, MachineFacts, parse_size, sidecar_path
from gantool.errors import BackendUnavailable, GantoolError
from gantool.export.cli import batch_profile
from gantool.export.onnx_export import export_checkpoint
from gantool.export.tensorrt_build import BuildSettings
from gantool.export.tensorrt_export import TrtRequest, parity_inputs, plan_engines
from gantool.files import sha256_file
from gantool.runtime.gpu import GpuScan

FACTS = MachineFacts("10.13.0.35", "NVIDIA Fake GPU", "9.0", "12.9", "12.9")


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def _refused(result, code: int, *words: str, after_progress: bool = False) -> None:
    """Exit ``code`` with one ``error:`` line (the last, after the progress lines of work already done)."""
    assert result.exit_code == code, result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("error: ") and (after_progress or len(lines) == 1), result.stderr
    assert "Traceback" not in result.stderr and all(word in lines[-1] for word in words), result.stderr


@pytest.fixture
def with_tensorrt(monkeypatch: pytest.MonkeyPatch):
    """Install a fake TensorRT of the given version (a GPU is faked too: machine facts, and ONNX as the engine)."""

    def install(version: str = "10.13.0.35", runner: type = OnnxRunner, gpu: bool = True):
        trt = fake_tensorrt(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        if gpu:
            monkeypatch.setattr(trt_engine, "machine_facts", lambda module, device=0: FACTS)
        else:  # what gantool.cuda says on a machine without a driver
            monkeypatch.setattr(trt_engine.cuda, "gpu", _no_driver)
        monkeypatch.setattr(trt_engine, "EngineRunner", runner)
        return trt

    return install


# --- refusals that need no TensorRT -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--opt-level", "7"], ["--opt-level", "[0, 5]"]),
        (["--min-batch", "16", "--opt-batch", "8", "--max-batch", "4"], ["min ≤ opt ≤ max"]),
        (["--max-batch", "0"], ["batch sizes"]),
        (["--opt-size", "64"], ["CycleGAN translators only"]),
        (["--workspace-mb", "0"], ["--workspace-mb"]),
        (["--opt-size", "big"], ["not N or HxW"]),
    ],
)
def test_bad_trt_flags_are_usage_errors_even_without_tensorrt(tiny_checkpoint: Path, cli, flags, words) -> None:
    before = _snapshot(tiny_checkpoint.parent)
    _refused(cli("export", tiny_checkpoint, "--trt", *flags), 2, *words)
    assert _snapshot(tiny_checkpoint.parent) == before


def test_translator_sizes_must_be_multiples_of_4(tmp_path: Path, cli) -> None:
    run = make_translator_run(tmp_path / "run")
    before = _snapshot(run)
    _refused(cli("export", run, "--trt", "--max-size", "18x32"), 2, "--max-size 18x32", "multiples of 4")
    _refused(cli("export", run, "--trt", "--min-size", "32", "--opt-size", "16"), 2, "min ≤ opt ≤ max")
    assert _snapshot(run) == before


@pytest.mark.parametrize("flags", [["--min-batch", "2"], ["--opt-level", "1"], ["--timing-cache", "cache.bin"]])
def test_trt_flags_without_trt_are_refused_not_ignored(tiny_checkpoint: Path, cli, flags) -> None:
    _refused(cli("export", tiny_checkpoint, *flags), 2, flags[0], "only applies with --trt")
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["generator.safetensors"]


def test_timing_cache_must_be_a_file(tiny_checkpoint: Path, cli) -> None:
    _refused(cli("export", tiny_checkpoint, "--trt", "--timing-cache", tiny_checkpoint.parent), 2, "is a directory")


def test_an_onnx_file_needs_trt(tiny_checkpoint: Path, cli) -> None:
    export_checkpoint(tiny_checkpoint, tiny_checkpoint.parent)
    _refused(cli("export", onnx_path_for(tiny_checkpoint, tiny_checkpoint.parent, "fp32")), 2, "add --trt")


def test_without_tensorrt_one_line_says_how_to_install_it(tiny_checkpoint: Path, cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # as on a machine without it, even where it is installed
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorrt" else real_find_spec(name, *a)
    )
    _refused(cli("export", tiny_checkpoint.parent, "--trt"), 1, "TensorRT is not installed", trt_engine.INSTALL_HINT)
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["generator.safetensors"]  # no ONNX either


def test_type_stubs_alone_are_not_tensorrt(tiny_checkpoint: Path, tmp_path: Path, cli, monkeypatch) -> None:
    (tmp_path / "stubs" / "tensorrt").mkdir(parents=True)
    (tmp_path / "stubs" / "tensorrt" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "stubs"))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # so that the stub package imported below is dropped after
    monkeypatch.delitem(sys.modules, "tensorrt")
    _refused(cli("export", tiny_checkpoint, "--trt"), 1, "only its type stubs")
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["generator.safetensors"]


def test_tensorrt_without_a_gpu_is_one_line(tiny_checkpoint: Path, cli, with_tensorrt) -> None:
    with_tensorrt(gpu=False)
    _refused(cli("export", tiny_checkpoint, "--trt"), 1, "no usable CUDA driver")
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["generator.safetensors"]


def _no_driver(index: int):

    raise BackendUnavailable("no usable CUDA driver: cudaErrorInsufficientDriver")


# --- the profile the flags give -----------------------------------------------------------------------------------


def test_batch_defaults_give_way_to_the_flags_given() -> None:
    assert batch_profile(None, None, None) == (1, 8, 64)
    assert batch_profile(None, None, 4) == (1, 4, 4)
    assert batch_profile(16, None, None) == (16, 16, 64)
    assert batch_profile(None, 100, None) == (1, 100, 100)
    assert batch_profile(16, 8, 4) == (16, 8, 4)  # explicit values are kept: profile_for refuses them


def test_a_translator_profile_from_size_flags_and_parity_inside_it(tmp_path: Path) -> None:
    run = make_translator_run(tmp_path / "run")
    request = TrtRequest(batch_profile(None, 4, 16), (None, parse_size("32"), parse_size("48x64")), BuildSettings())
    jobs = plan_engines(run_checkpoints(run), None, run, request, force=False)
    assert [job.engine.name for job in jobs] == ["generator_a2b.fp16.engine", "generator_b2a.fp16.engine"]
    profile = jobs[0].profile
    assert (profile.min, profile.opt, profile.max) == ((1, 3, 32, 32), (4, 3, 32, 32), (16, 3, 48, 64))
    shapes = [x.shape for x in parity_inputs(jobs[0].spec, profile)]
    assert shapes == [(1, 3, 32, 32), (1, 3, 48, 64), (4, 3, 32, 32)]  # min and opt batch, min/opt and max size


def test_a_gan_is_checked_at_min_and_opt_batch_up_to_8(tiny_checkpoint: Path) -> None:
    request = TrtRequest(batch_profile(2, 32, 64), (None, None, None), BuildSettings())
    (job,) = plan_engines([tiny_checkpoint], None, tiny_checkpoint.parent, request, force=False)
    assert (job.profile.min, job.profile.opt, job.profile.max) == ((2, 8), (32, 8), (64, 8))
    assert [x.shape for x in parity_inputs(job.spec, job.profile)] == [(2, 8), (8, 8)]


# --- the whole export, with a fake TensorRT whose engines are the ONNX they were built from ---------------------


def test_tensorrt_10_builds_from_the_fp32_onnx_and_writes_engine_and_sidecar(
    tiny_checkpoint: Path, tmp_path: Path, cli, with_tensorrt
) -> None:
    trt = with_tensorrt("10.13.0.35")
    cache = tmp_path / "cache.bin"
    result = cli("export", tiny_checkpoint.parent, "--trt", "--max-batch", "16", "--timing-cache", cache)
    assert result.exit_code == 0, result.stderr
    run = tiny_checkpoint.parent
    assert sorted(p.name for p in run.iterdir()) == [
        "generator.fp16.engine", "generator.fp16.engine.json", "generator.fp16.onnx", "generator.onnx",
        "generator.safetensors",
    ]  # fmt: skip
    engine = run / "generator.fp16.engine"
    info = EngineInfo.from_json(sidecar_path(engine).read_text())
    assert (info.precision, info.source_onnx, info.built_on) == ("fp16", "generator.onnx", FACTS)
    assert info.source_sha256 == sha256_file(run / "generator.onnx") and info.engine_sha256 == sha256_file(engine)
    assert (info.profile.min, info.profile.opt, info.profile.max) == ((1, 8), (8, 8), (16, 8))
    assert 0 <= info.max_abs_diff <= 1e-2
    assert info.extra["fp16_builder_flag"] is True and info.extra["strongly_typed"] is False
    assert (info.extra["tensorrt_major"], info.extra["reference"], info.extra["timing_cache"]) == (
        10, "PyTorch FP32", "cache.bin",
    )  # fmt: skip
    assert trt.calls.builder_flags == ["FP16"] and trt.calls.network_flags == [(0,)]
    assert trt.calls.parsed == [(run / "generator.onnx").read_bytes()]
    assert cache.read_bytes() == b"+timed"  # a new cache, saved after the build
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][-2:] == ["build", "s"] and [(Path(r[0]).name, r[1], r[4]) for r in rows[1:]] == [
        ("generator.onnx", "fp32", "ok"),
        ("generator.fp16.onnx", "fp16", "ok"),
        ("generator.fp16.engine", "fp16", "ok"),
    ]


def test_tensorrt_11_builds_from_the_fp16_onnx_without_a_precision_flag(tiny_checkpoint: Path, cli, with_tensorrt):
    trt = with_tensorrt("11.0.0.1")
    result = cli("export", tiny_checkpoint, "--trt", "--json")
    assert result.exit_code == 0, result.stderr
    info = EngineInfo.from_json(sidecar_path(tiny_checkpoint.parent / "generator.fp16.engine").read_text())
    assert info.source_onnx == "generator.fp16.onnx" and info.extra["strongly_typed"] is True
    assert trt.calls.builder_flags == [] and trt.calls.network_flags == [()]
    rows = json.loads(result.stdout)
    assert [(Path(r["path"]).name, r["ok"]) for r in rows][-1] == ("generator.fp16.engine", True)
    assert rows[-1]["build_seconds"] >= 0


def test_fresh_onnx_files_are_reused_and_stale_ones_refused(tiny_checkpoint: Path, cli, with_tensorrt) -> None:
    with_tensorrt()
    run = tiny_checkpoint.parent
    export_checkpoint(tiny_checkpoint, run)
    onnx_files = {name: value for name, value in _snapshot(run).items() if name.endswith(".onnx")}
    result = cli("export", run, "--trt", "--json")
    assert result.exit_code == 0, result.stderr
    assert [Path(r["path"]).name for r in json.loads(result.stdout)] == ["generator.fp16.engine"]
    assert {name: value for name, value in _snapshot(run).items() if name.endswith(".onnx")} == onnx_files

    for path in (run / "generator.fp16.engine", sidecar_path(run / "generator.fp16.engine")):
        path.unlink()
    old = tiny_checkpoint.stat().st_mtime - 60
    os.utime(run / "generator.onnx", (old, old))
    before = _snapshot(run)
    _refused(cli("export", run, "--trt"), 2, "older than generator.safetensors", "--force")
    assert _snapshot(run) == before
    assert cli("export", run, "--trt", "--force").exit_code == 0
    assert (run / "generator.onnx").stat().st_mtime > tiny_checkpoint.stat().st_mtime


def test_existing_engines_need_force(tiny_checkpoint: Path, cli, with_tensorrt) -> None:
    with_tensorrt()
    assert cli("export", tiny_checkpoint, "--trt").exit_code == 0
    before = _snapshot(tiny_checkpoint.parent)
    _refused(cli("export", tiny_checkpoint, "--trt"), 2, "generator.fp16.engine already exists", "--force")
    assert _snapshot(tiny_checkpoint.parent) == before
    assert cli("export", tiny_checkpoint, "--trt", "--force").exit_code == 0


class FailsB2A(OnnxRunner):
    def __init__(self, plan: bytes, profile, *, where: str, use_graphs: bool = True) -> None:
        super().__init__(plan, profile, where=where)
        self.offset = 0.5 if "b2a" in where else 0.0


def test_engines_of_a_run_are_written_all_or_none(tmp_path: Path, cli, with_tensorrt) -> None:
    with_tensorrt(runner=FailsB2A)
    run = make_translator_run(tmp_path / "run")
    cache = tmp_path / "cache.bin"
    _refused(
        cli("export", run, "--trt", "--timing-cache", cache),
        1,
        "generator_b2a.fp16.engine differs from PyTorch",
        after_progress=True,
    )
    assert not list(run.glob("*.engine*")) and not cache.exists()  # not even the a2b engine, which passed
    assert len(list(run.glob("*.onnx"))) == 4  # the ONNX files passed their own check and stay


def test_an_onnx_file_alone_is_checked_with_onnxruntime(tiny_checkpoint: Path, tmp_path: Path, cli, with_tensorrt):
    export_checkpoint(tiny_checkpoint, tmp_path / "onnx")  # no checkpoint beside these
    trt = with_tensorrt("10.13.0.35")
    result = cli("export", tmp_path / "onnx" / "generator.fp16.onnx", "--trt")
    assert result.exit_code == 0, result.stderr
    info = EngineInfo.from_json((tmp_path / "onnx" / "generator.fp16.engine.json").read_text())
    assert info.extra["reference"] == "onnxruntime FP32 (generator.onnx)" and info.extra["strongly_typed"] is True
    assert trt.calls.network_flags == [(1 << 1,)] and trt.calls.builder_flags == []  # 10.x, FP16 file: strongly typed

    (tmp_path / "onnx" / "generator.onnx").unlink()
    _refused(
        cli("export", tmp_path / "onnx" / "generator.fp16.onnx", "--trt", "--force"),
        1,
        "cannot check",
    )


def test_tensorrt_11_refuses_an_fp32_onnx_file(tiny_checkpoint: Path, cli, with_tensorrt) -> None:
    with_tensorrt("11.0.0.1")
    export_checkpoint(tiny_checkpoint, tiny_checkpoint.parent)
    before = _snapshot(tiny_checkpoint.parent)
    _refused(cli("export", tiny_checkpoint.parent / "generator.onnx", "--trt"), 2, "pass", "generator.fp16.onnx")
    assert _snapshot(tiny_checkpoint.parent) == before


# --- real TensorRT on a real GPU ---------------------------------------------------------------------------------


def _tensorrt_and_gpu() -> bool:
    try:
        trt_engine.import_tensorrt()
        return bool(gpus())
    except GantoolError:
        return False


@pytest.mark.skipif(not _tensorrt_and_gpu(), reason="needs TensorRT and an NVIDIA GPU")
def test_end_to_end_engines_match_pytorch(tmp_path: Path, cli) -> None:
    run = make_translator_run(tmp_path / "run")
    result = cli("export", run, "--trt", "--max-batch", "4", "--max-size", "32", "--timing-cache", tmp_path / "tc")
    assert result.exit_code == 0, result.stderr
    for direction in ("a2b", "b2a"):
        engine = run / f"generator_{direction}.fp16.engine"
        info = EngineInfo.from_json(sidecar_path(engine).read_text())
        assert info.max_abs_diff <= 1e-2 and info.engine_sha256 == sha256_file(engine)
        assert info.built_on == trt_engine.machine_facts(trt_engine.import_tensorrt())
        runner = trt_engine.EngineRunner(engine.read_bytes(), info.profile, where=engine.name)
        try:
            images = np.random.default_rng(1).uniform(-1, 1, (3, 3, 24, 32)).astype(np.float32)
            module, _ = load_generator(run / f"generator_{direction}.safetensors")
            with torch.inference_mode():
                expected = module(torch.from_numpy(images)).numpy()
            assert np.abs(runner.run(images) - expected).max() <= 1e-2
        finally:
            runner.close()
    assert (tmp_path / "tc").stat().st_size > 0


# --- INT8 engines (export --trt --int8), with the same fake TensorRT -------------------------------------------


@pytest.fixture
def fake_engine_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tensorrt backend loading the fake engines (ONNX bytes) so that the quality verdict can run them here."""
    from gantool.runtime.backends import tensorrt_backend
    from gantool.runtime.backends.base import Availability

    monkeypatch.setattr(tensorrt_backend.TensorrtBackend, "availability", classmethod(lambda cls: Availability(True)))
    monkeypatch.setattr(tensorrt_backend, "machine_facts", lambda module, device=0: FACTS)
    monkeypatch.setattr(tensorrt_backend, "EngineRunner", OnnxRunner)


@pytest.mark.parametrize(
    ("version", "network_flags", "builder_flags"),
    [("10.13.0.35", [(0,), (0,)], ["FP16", "INT8", "FP16"]), ("11.0.0.1", [(), ()], [])],
)
def test_int8_engines_build_from_the_qdq_file_and_keep_their_verdict_in_the_sidecar(
    tmp_path: Path, cli, with_tensorrt, fake_engine_runtime, version, network_flags, builder_flags
) -> None:
    from test_export_int8 import digits_gan

    trt = with_tensorrt(version)
    run = digits_gan(tmp_path / "run")
    result = cli("export", run, "--trt", "--int8", "--calib", "16", "--quality-check", "100", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {Path(row["path"]).name: row for row in json.loads(result.stdout)}
    assert rows["generator.int8.engine"]["precision"] == "int8" and rows["generator.int8.engine"]["tolerance"] is None
    info = EngineInfo.from_json(sidecar_path(run / "generator.int8.engine").read_text())
    assert (info.precision, info.source_onnx) == ("int8", "generator.int8.onnx")
    assert info.extra["quality"]["passed"] is True and info.extra["quality"]["verdict"].startswith("no measurable loss")
    assert info.extra["int8_builder_flag"] is (version.startswith("10.")) and info.extra["strongly_typed"] is (
        version.startswith("11.")
    )
    assert trt.calls.network_flags == network_flags and trt.calls.builder_flags == builder_flags
    assert trt.calls.parsed[-1] == (run / "generator.int8.onnx").read_bytes()  # INT8 from the file's own Q/DQ
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]

    from gantool.cuda import GpuInfo
    from gantool.runtime import registry

    scan = GpuScan((GpuInfo(0, "NVIDIA Fake GPU", "9.0", 81559),))
    (engine,) = registry._int8_engine(run, None, scan, verdict_needed=True)
    assert (engine.name, engine.precision) == ("tensorrt", "int8") and engine.quality.startswith("quality verdict")


def test_existing_int8_engines_need_force_before_anything_is_built(tiny_checkpoint: Path, cli, with_tensorrt) -> None:
    trt = with_tensorrt()
    run = tiny_checkpoint.parent
    (run / "generator.int8.engine").write_bytes(b"old")
    result = cli("export", run, "--trt", "--int8")
    _refused(result, 2, "generator.int8.engine already exists")
    assert trt.calls.parsed == [] and sorted(p.name for p in run.iterdir()) == [
        "generator.int8.engine", "generator.safetensors",
    ]  # fmt: skip
