"""bf16 on the torch backend, and the CPU features that decide where it may run (``gantool doctor``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gantool
from conftest import make_translator_run, run_cli
from gantool.machine import cpu_features

HAS_BF16 = cpu_features()["bf16"]


def test_cpu_features_come_from_the_kernel_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse2 avx512f avx512_vnni avx512_bf16\n")
    assert cpu_features(cpuinfo) == {"vnni": True, "bf16": True, "amx": False}
    cpuinfo.write_text("processor : 0\nflags : fpu sse2 avx2 amx_tile amx_bf16 amx_int8\n")
    assert cpu_features(cpuinfo) == {"vnni": False, "bf16": True, "amx": True}
    assert cpu_features(tmp_path / "missing") == {"vnni": False, "bf16": False, "amx": False}


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has neither AVX-512 BF16 nor AMX")
def test_bf16_samples_stay_within_a_level_or_two_of_fp32(tiny_checkpoint: Path) -> None:
    fp32 = gantool.load(tiny_checkpoint, "torch", device="cpu").sample(64, seed=0)
    bf16 = gantool.load(tiny_checkpoint, "torch", device="cpu", precision="bf16")
    assert bf16.precision == "bf16"
    difference = np.abs(bf16.sample(64, seed=0).astype(int) - fp32.astype(int))
    assert difference.max() <= 4 and difference.mean() < 1


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has neither AVX-512 BF16 nor AMX")
def test_bf16_translations_keep_their_size_and_stay_close(tmp_path: Path) -> None:
    run = make_translator_run(tmp_path / "cg")
    images = np.random.default_rng(0).integers(0, 256, (2, 20, 24, 3), dtype=np.uint8)
    fp32 = gantool.load(run, "torch", device="cpu").translate(images)
    bf16 = gantool.load(run, "torch", device="cpu", precision="bf16").translate(images)
    assert bf16.shape == images.shape
    assert np.abs(bf16.astype(int) - fp32.astype(int)).mean() < 2


def test_bf16_on_a_cpu_without_it_is_refused_in_one_line(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gantool.runtime.backends import torch_backend

    monkeypatch.setattr(torch_backend, "cpu_features", lambda: {"vnni": False, "bf16": False, "amx": False})
    result = run_cli("generate", tiny_checkpoint, "-n", "4", "--backend", "torch", "--device", "cpu",
                     "--precision", "bf16", "--out", tmp_path / "out.npz")  # fmt: skip
    assert result.exit_code == 2
    assert "needs a CPU with AVX-512 BF16 or AMX" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.npz").exists()


def test_onnxruntime_has_no_bf16(tiny_checkpoint: Path, tmp_path: Path) -> None:
    assert run_cli("export", tiny_checkpoint).exit_code == 0
    result = run_cli("generate", tiny_checkpoint.parent, "-n", "4", "--backend", "onnxruntime",
                     "--precision", "bf16", "--out", tmp_path / "out.npz")  # fmt: skip
    assert result.exit_code == 2
    assert "runs fp32, fp16, int8, not 'bf16'" in result.stderr
