"""GPU backends: the registry's entries and ``auto`` rule, refusals on a machine without a GPU, and the GPU runs.

The ``auto`` candidates are tested here on a simulated GPU machine: cuda-python's
answer, TensorRT's presence, onnxruntime's providers and torch's CUDA check are
replaced with what an H100 box would say, and only the candidates (what ``auto``
would measure) and their reasons are checked (nothing runs on the pretend GPU). The tests at the end run the
torch, onnxruntime-CUDA and onnxruntime-TensorRT paths for real and skip, with
the reason, wherever there is no NVIDIA GPU or no provider for them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from conftest import make_checkpoint, make_translator_run
from gantool import cuda
from gantool.checkpoint import read_spec
from gantool.engines import EngineInfo, MachineFacts, profile_for, sidecar_path
from gantool.errors import BackendUnavailable, UsageError
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import gpu, registry
from gantool.runtime.backends.base import Availability
from gantool.runtime.backends.onnxruntime_backend import GPU_HINT, run_bound
from gantool.runtime.backends.onnxruntime_trt_backend import TRT_HINT, cache_dir
from gantool.runtime.backends.tensorrt_backend import TensorrtBackend
from gantool.runtime.generator import Generator

H100 = cuda.GpuInfo(0, "NVIDIA H100 80GB HBM3", "9.0", 81559)
HAS_GPU = gpu.scan().usable
TORCH_CUDA = HAS_GPU and torch.cuda.is_available()
ORT_CUDA = HAS_GPU and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
ORT_TRT = ORT_CUDA and "TensorrtExecutionProvider" in onnxruntime.get_available_providers()
needs_torch_cuda = pytest.mark.skipif(not TORCH_CUDA, reason="needs an NVIDIA GPU and a CUDA build of torch")
needs_ort_cuda = pytest.mark.skipif(not ORT_CUDA, reason="needs an NVIDIA GPU and onnxruntime-gpu (gantool[gpu])")
needs_ort_trt = pytest.mark.skipif(
    not ORT_TRT, reason="needs an NVIDIA GPU, onnxruntime-gpu and TensorRT (gantool[trt])"
)
no_gpu_here = pytest.mark.skipif(HAS_GPU, reason="checks the refusals of a machine without a usable GPU")


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("gpu") / "run"
    export_checkpoint(make_checkpoint(run), run)
    return run


@pytest.fixture(scope="module")
def translator_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_translator_run(tmp_path_factory.mktemp("gpu-translator") / "run")
    export_checkpoint(run / "generator_a2b.safetensors", run)
    return run


class GpuMachine:
    """Switches for a pretend H100 machine: which engines can use its GPU."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tensorrt = self.onnxruntime = self.torch = True
        monkeypatch.setattr(cuda, "gpus", lambda: [H100])
        monkeypatch.setattr(TensorrtBackend, "availability", classmethod(lambda cls: Availability(self.tensorrt)))
        monkeypatch.setattr(
            onnxruntime,
            "get_available_providers",
            lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.onnxruntime else ["CPUExecutionProvider"],
        )
        monkeypatch.setattr(torch.cuda, "is_available", lambda: self.torch)


@pytest.fixture
def gpu_machine(monkeypatch: pytest.MonkeyPatch) -> GpuMachine:
    return GpuMachine(monkeypatch)


def _engine_beside(run: Path, stale: bool = False, compute_capability: str = H100.compute_capability) -> Path:
    """A stand-in plan with a genuine sidecar, as export --trt leaves them beside the checkpoint."""
    engine = run / "generator.fp16.engine"
    engine.write_bytes(b"plan")
    spec = read_spec(run / "generator.safetensors")
    info = EngineInfo(
        spec=spec,
        precision="fp16",
        profile=profile_for(spec, "z", "images"),
        built_on=MachineFacts("10.13.0.35", H100.name, compute_capability, "12.9", "12.9"),
        source_onnx="generator.onnx",
        source_sha256="0" * 64,
        engine_sha256=hashlib.sha256(b"plan").hexdigest(),
        max_abs_diff=0.003,
    )
    sidecar_path(engine).write_text(info.to_json())
    if stale:
        os.utime(engine, (0, 0))  # built before the checkpoint was (re)written
    return engine


def test_the_registry_lists_every_backend_with_its_devices_and_precisions() -> None:
    expected = {
        "torch": (("cpu", "cuda"), ("fp32", "fp16", "bf16")),
        "torch-compile": (("cpu", "cuda"), ("fp32", "fp16", "bf16")),
        "onnxruntime": (("cpu", "cuda"), ("fp32", "fp16", "int8")),
        "onnxruntime-trt": (("cuda",), ("fp16", "fp32")),
        "tensorrt": (("cuda",), ("fp16", "int8")),
    }
    assert registry.names() == list(expected)
    for name, (devices, precisions) in expected.items():
        backend = registry.backend_class(name)
        assert (backend.name, backend.devices, backend.precisions) == (name, devices, precisions)


def _candidates(model: Path, device: str = "auto", precision: str | None = None) -> list[tuple[str, str, str]]:
    """What ``auto`` would measure for MODEL here: (backend, device, precision) in rule order."""
    return [(c.name, c.device, c.precision) for c in _found(model, device, precision)]


def _found(model: Path, device: str = "auto", precision: str | None = None) -> list[registry.Choice]:
    return registry.candidates(model, None, device, precision, gpu.scan())


def test_auto_measures_a_fresh_engine_among_the_gpu_and_cpu_backends(gpu_machine: GpuMachine, tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_checkpoint(run)
    _engine_beside(run)
    found = _found(run)
    assert [(c.name, c.device, c.precision) for c in found] == [
        ("tensorrt", "cuda", "fp16"),
        ("torch", "cuda", "fp32"),
        ("torch", "cpu", "fp32"),
    ]
    assert found[0].reason == "tensorrt (auto: found generator.fp16.engine, GPU NVIDIA H100 80GB HBM3)"
    choice = registry.choose(run / "generator.fp16.engine")  # one candidate: taken as is, nothing measured
    assert (choice.name, choice.device, choice.reason) == ("tensorrt", "cuda", "tensorrt (auto: MODEL is an engine)")
    assert _candidates(run, precision="fp32") == [("torch", "cuda", "fp32"), ("torch", "cpu", "fp32")]  # FP16 engines
    assert _candidates(run, device="cpu") == [("torch", "cpu", "fp32")]  # asked for the CPU: no GPU backend
    assert _candidates(run, device="cuda") == [("tensorrt", "cuda", "fp16"), ("torch", "cuda", "fp32")]
    gpu_machine.tensorrt = False
    assert _candidates(run, device="cuda") == [("torch", "cuda", "fp32")]  # an engine but no TensorRT to run it


def test_auto_passes_over_an_engine_built_for_another_gpu_architecture(gpu_machine: GpuMachine, tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_checkpoint(run)
    _engine_beside(run, compute_capability="8.0")  # built on an A100
    assert [name for name, _, _ in _candidates(run)] == ["torch", "torch"]
    assert registry.choose(run, "tensorrt").name == "tensorrt"  # asked for by name: loading then says "rebuild"


def test_auto_passes_over_a_stale_engine_for_onnxruntime_then_torch(
    gpu_machine: GpuMachine, exported_run: Path, tmp_path: Path
) -> None:
    run = shutil.copytree(exported_run, tmp_path / "run")  # exported before the GPU was pretended
    _engine_beside(run, stale=True)
    found = _found(run)
    assert [(c.name, c.device) for c in found] == [
        ("onnxruntime", "cuda"),
        ("torch", "cuda"),
        ("onnxruntime", "cpu"),
        ("torch", "cpu"),
    ]
    assert "found generator.onnx" in found[0].reason and "GPU NVIDIA H100" in found[0].reason
    assert _candidates(run, precision="fp16") == [  # the .fp16.onnx on the GPU and the CPU; torch's FP16 on cuda only
        ("onnxruntime", "cuda", "fp16"),
        ("torch", "cuda", "fp16"),
        ("onnxruntime", "cpu", "fp16"),
    ]
    assert _candidates(run / "generator.onnx") == [("onnxruntime", "cuda", "fp32"), ("onnxruntime", "cpu", "fp32")]
    gpu_machine.onnxruntime = False  # the CPU build of onnxruntime
    found = _found(run)
    assert [(c.name, c.device) for c in found] == [("torch", "cuda"), ("onnxruntime", "cpu"), ("torch", "cpu")]
    assert "no onnxruntime-gpu" in found[0].reason
    choice = registry.choose(run / "generator.onnx")  # torch cannot run an ONNX file: one candidate left
    assert (choice.name, choice.device) == ("onnxruntime", "cpu")
    gpu_machine.torch = False
    found = _found(run)
    assert [(c.name, c.device) for c in found] == [("onnxruntime", "cpu"), ("torch", "cpu")]
    assert "no backend here can use the GPU NVIDIA H100" in found[0].reason
    with pytest.raises(BackendUnavailable, match="--device cuda: no backend can run"):
        registry.choose(run, device="cuda")


def test_a_named_backend_takes_the_gpu_when_it_can(gpu_machine: GpuMachine, exported_run: Path) -> None:
    assert registry.choose(exported_run, "onnxruntime").device == "cuda"
    assert registry.choose(exported_run, "torch").reason == "torch (requested, on cuda)"
    assert registry.choose(exported_run, "torch", device="cpu").device == "cpu"
    assert registry.choose(exported_run, "tensorrt").precision == "fp16"
    gpu_machine.onnxruntime = False
    assert registry.choose(exported_run, "onnxruntime").device == "cpu"


@no_gpu_here
def test_without_a_gpu_auto_stays_on_the_cpu_and_says_why(exported_run: Path) -> None:
    choice = registry.choose(exported_run)
    assert choice.device == "cpu" and choice.reason.endswith("on cpu: no usable CUDA driver)")
    with pytest.raises(BackendUnavailable, match=r"^--device cuda: no usable GPU here \(no usable CUDA driver"):
        registry.choose(exported_run, device="cuda")
    with pytest.raises(UsageError, match="the tensorrt backend runs on cuda, not cpu"):
        registry.choose(exported_run, "tensorrt", device="cpu")


@no_gpu_here
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "cuda"], "--device cuda: no usable GPU here (no usable CUDA driver"),
        (["--backend", "torch", "--device", "cuda"], "--device cuda: torch "),
        (["--backend", "torch-compile", "--device", "cuda"], "sees no CUDA device"),
        (["--backend", "onnxruntime", "--device", "cuda"], GPU_HINT),
        (["--backend", "onnxruntime-trt"], TRT_HINT),
        (["--backend", "tensorrt"], "TensorRT is not installed"),
    ],
)
def test_gpu_requests_without_a_gpu_are_one_line(
    cli, exported_run: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "x.npz"
    result = cli("generate", exported_run, *flags, "--out", out)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr
    assert not out.exists()


def test_torch_compile_runs_on_the_cpu_like_torch(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "compiled.npz"
    result = cli("generate", exported_run, "--backend", "torch-compile", "-n", "2", "-b", "1", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "torch-compile on cpu, fp32" in result.stderr
    eager = Generator.open(exported_run, "torch").sample(2)
    with np.load(out) as data:
        assert np.abs(data["images"].astype(int) - eager).max() <= 1


def test_torch_compile_without_a_compiler_is_one_line(
    cli, monkeypatch: pytest.MonkeyPatch, exported_run: Path, tmp_path: Path
) -> None:
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("gantool-no-such-compiler",))  # as on a machine without g++
    monkeypatch.setattr(inductor, "fx_graph_cache", False)  # or a compile cached on disk hides it
    torch._dynamo.reset()  # and one cached in this process by an earlier test
    result = cli("generate", exported_run, "--backend", "torch-compile", "-n", "2", "--out", tmp_path / "x.npz")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: torch.compile cannot compile on this machine: InvalidCxxCompiler")
    assert not (tmp_path / "x.npz").exists()


def test_io_binding_gives_what_a_plain_run_gives(exported_run: Path) -> None:
    """The IO-binding calls the CUDA path makes, run here with the output bound on the CPU."""
    session = onnxruntime.InferenceSession(str(exported_run / "generator.onnx"), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    plain = session.run(["images"], {"z": batch})[0]
    bound = run_bound(session, "z", "images", batch, "cpu")
    assert bound.dtype == np.float32 and np.array_equal(bound, plain)


def test_the_tensorrt_engine_cache_is_per_user_and_per_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANTOOL_CACHE_DIR", str(tmp_path))
    first, second = cache_dir(b"model one"), cache_dir(b"model two")
    assert first is not None and first.parent == tmp_path / "ort-trt" and first != second
    assert cache_dir(b"model one") == first
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("GANTOOL_CACHE_DIR", str(tmp_path / "blocked"))
    assert cache_dir(b"model one") is None  # no cache, never a failed command


def test_the_gpu_aware_onnxruntime_paths_never_import_torch(exported_run: Path) -> None:
    code = f"""
import sys
from pathlib import Path
import gantool
from gantool.errors import GantoolError
from gantool.runtime import registry
run, onnx = Path({str(exported_run)!r}), Path({str(exported_run / "generator.onnx")!r})
assert registry.choose(onnx).name == "onnxruntime"
assert registry.choose(run, device="cpu", precision="fp16").name == "onnxruntime"
for name in ("onnxruntime", "onnxruntime-trt"):
    registry.backend_class(name).probe()
for name, device in (("onnxruntime", "cuda"), ("onnxruntime-trt", "cuda")):
    try:
        registry.create(name, run, device)
    except GantoolError:
        pass  # no GPU, or no provider for it: refused in one line, without torch
assert gantool.load(onnx, device="cpu", precision="fp16").sample(2).shape == (2, 8, 8, 1)
heavy = [m for m in ("torch", "onnx", "tensorrt") if m in sys.modules]
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# ---- on a real GPU: each path agrees with the CPU reference within its precision's tolerance ----


def _outputs(name: str, model: Path, batch: np.ndarray, device: str, precision: str) -> np.ndarray:
    return registry.create(name, model, device, precision=precision).run(batch)


@needs_torch_cuda
@pytest.mark.parametrize(
    ("name", "precision", "tolerance"),
    [
        ("torch", "fp32", 1e-4),
        ("torch", "fp16", 2e-2),
        ("torch-compile", "fp32", 1e-4),
        ("torch-compile", "fp16", 2e-2),
    ],
)
def test_torch_on_cuda_matches_the_cpu(
    exported_run: Path, translator_run: Path, name: str, precision: str, tolerance: float
) -> None:
    latents = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    images = np.random.default_rng(2).uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32)
    for model, batch in ((exported_run, latents), (translator_run, images)):  # the translator runs channels_last
        reference = _outputs("torch", model, batch, "cpu", "fp32")
        out = _outputs(name, model, batch, "cuda", precision)
        assert out.dtype == np.float32 and out.shape == reference.shape and out.flags.c_contiguous
        assert np.abs(out - reference).max() <= tolerance


@needs_ort_cuda
@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-4), ("fp16", 2e-2)])
def test_onnxruntime_on_cuda_matches_the_cpu(exported_run: Path, precision: str, tolerance: float) -> None:
    latents = np.random.default_rng(3).standard_normal((7, 8)).astype(np.float32)
    reference = _outputs("onnxruntime", exported_run, latents, "cpu", "fp32")
    assert np.abs(_outputs("onnxruntime", exported_run, latents, "cuda", precision) - reference).max() <= tolerance


@needs_ort_trt
def test_onnxruntime_tensorrt_matches_the_cpu(exported_run: Path) -> None:
    latents = np.random.default_rng(4).standard_normal((4, 8)).astype(np.float32)
    reference = _outputs("onnxruntime", exported_run, latents, "cpu", "fp32")
    assert np.abs(_outputs("onnxruntime-trt", exported_run, latents, "cuda", "fp16") - reference).max() <= 2e-2


@pytest.mark.skipif(not (TORCH_CUDA or ORT_CUDA), reason="needs an NVIDIA GPU and torch or onnxruntime for CUDA")
def test_auto_runs_on_this_gpu_and_names_it(exported_run: Path) -> None:
    found = _found(exported_run)
    assert found[0].device == "cuda" and gpu.scan().first in found[0].reason
    choice = registry.choose(exported_run, device="cuda")  # measured when both torch and onnxruntime see the GPU
    assert choice.device == "cuda" and (choice.backend is None or choice.backend.device == "cuda")
