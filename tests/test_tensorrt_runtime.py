"""The TensorRT runtime: what it does without TensorRT or a GPU (for real), its pure decisions, and a GPU run.

CI machines have cuda-python but no driver, and cannot install TensorRT, so
most of this file checks the refusals users see there. The last tests build an
engine and compare it with PyTorch; they run wherever TensorRT and an NVIDIA
GPU are both present and skip elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import make_checkpoint, make_translator_run, tiny_gan_spec, tiny_translator_spec
from gantool import cuda
from gantool.artifacts import checkpoint_in, engine_path_for
from gantool.engines import EngineInfo, MachineFacts, Profile, profile_for, sidecar_path
from gantool.errors import ArtifactError, BackendUnavailable, GantoolError, UsageError
from gantool.runtime.backends import tensorrt_backend
from gantool.runtime.backends.base import Availability
from gantool.runtime.backends.tensorrt_backend import TensorrtBackend, sha256_bytes
from gantool.trt_engine import (
    EngineRunner,
    graph_key,
    import_tensorrt,
    is_real_tensorrt,
    machine_facts,
    nbytes,
    plan_chunks,
    tensorrt_major,
)

PLAN = b"not really a TensorRT plan"
H100 = MachineFacts("10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0", "12.9", "12.9")


def _cuda_driver_works() -> bool:
    try:
        return bool(cuda.gpus())
    except GantoolError:
        return False


def _tensorrt_and_gpu() -> bool:
    try:
        import_tensorrt()
    except BackendUnavailable:
        return False
    return _cuda_driver_works()


no_driver = pytest.mark.skipif(_cuda_driver_works(), reason="this machine has a working CUDA driver")
needs_gpu = pytest.mark.skipif(not _tensorrt_and_gpu(), reason="needs TensorRT and an NVIDIA GPU")


@pytest.fixture
def fresh_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``tensorrt`` in sys.modules during the test, and none left after it (whatever the test imports)."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    del sys.modules["tensorrt"]


def write_engine(run: Path, spec: Any = None, plan: bytes = PLAN, built_on: MachineFacts = H100) -> Path:
    """A fake engine plus a genuine sidecar for it (what export --trt writes), beside the run's checkpoint."""
    spec = spec or tiny_gan_spec()
    engine = engine_path_for(checkpoint_in(run), run)
    run.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(plan)
    info = EngineInfo(
        spec=spec,
        precision="fp16",
        profile=profile_for(spec, "z", "images"),
        built_on=built_on,
        source_onnx="generator.onnx",
        source_sha256="0" * 64,
        engine_sha256=sha256_bytes(plan),
        max_abs_diff=0.003,
    )
    sidecar_path(engine).write_text(info.to_json())
    return engine


# --- TensorRT missing, or only its stubs -----------------------------------------------------------------------


def test_stubs_only_tensorrt_is_not_tensorrt(tmp_path: Path) -> None:
    """The tensorrt-stubs wheel leaves an importable namespace package; neither check may mistake it for TensorRT."""
    (tmp_path / "tensorrt").mkdir()
    (tmp_path / "tensorrt" / "__init__.pyi").write_text("__version__: str\n")
    code = (
        "import json\n"
        "from gantool.errors import BackendUnavailable\n"
        "from gantool.runtime.backends.tensorrt_backend import TensorrtBackend\n"
        "from gantool.trt_engine import import_tensorrt\n"
        "import tensorrt\n"  # it does import ...
        "try:\n    import_tensorrt()\n    error = None\nexcept BackendUnavailable as exc:\n    error = str(exc)\n"
        "print(json.dumps([TensorrtBackend.availability().ok, error]))\n"
    )
    env_path = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n{code}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    available, error = json.loads(result.stdout)
    assert available is False
    assert error.startswith("TensorRT is not installed (only its type stubs are): pip install")


def test_tensorrt_that_cannot_load_its_libraries_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_import: None
) -> None:
    fake = tmp_path / "tensorrt"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ImportError('libnvinfer.so.10: cannot open shared object file: No such file or directory\\nmore')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendUnavailable) as error:
        import_tensorrt()
    assert str(error.value) == (
        "TensorRT is installed but cannot load (libnvinfer.so.10: cannot open shared object file: "
        'No such file or directory): pip install "gantool[trt]" on a machine with an NVIDIA GPU (README: GPUs and '
        "TensorRT)"
    )
    assert "tensorrt" not in sys.modules  # a failed import leaves nothing behind


def test_real_tensorrt_is_told_apart_by_version_and_builder() -> None:
    assert not is_real_tensorrt(types.ModuleType("tensorrt"))
    assert is_real_tensorrt(types.SimpleNamespace(__version__="10.13.0.35", Builder=object))
    assert tensorrt_major(types.SimpleNamespace(__version__="10.13.0.35")) == 10
    assert tensorrt_major(types.SimpleNamespace(__version__="11.0.0.4")) == 11
    with pytest.raises(BackendUnavailable, match="cannot read TensorRT's version"):
        tensorrt_major(types.SimpleNamespace(__version__="unknown"))


@pytest.mark.skipif(_tensorrt_and_gpu(), reason="TensorRT is installed here")
def test_without_tensorrt_the_runner_says_how_to_install_it(fresh_import: None) -> None:
    with pytest.raises(BackendUnavailable, match=r'^TensorRT is not installed.*pip install "gantool\[trt\]"'):
        EngineRunner(PLAN, profile_for(tiny_gan_spec(), "z", "images"), where="x.engine")


# --- CUDA through cuda-python -----------------------------------------------------------------------------------


@no_driver
def test_no_driver_is_one_clear_line() -> None:
    with pytest.raises(BackendUnavailable, match="^no usable CUDA (driver|GPU): ") as error:
        cuda.gpus()
    assert "\n" not in str(error.value)
    with pytest.raises(BackendUnavailable, match="^no usable CUDA driver: "):
        cuda.driver_cuda_version()
    with pytest.raises(BackendUnavailable, match="^no usable CUDA (driver|GPU): "):
        cuda.Stream()
    with pytest.raises(BackendUnavailable, match="^no usable CUDA (driver|GPU): "):
        machine_facts(types.SimpleNamespace(__version__="10.13.0.35"))


def test_the_runtime_version_needs_no_driver() -> None:
    major, minor = cuda.runtime_cuda_version().split(".")
    assert int(major) >= 12 and minor.isdigit()


@pytest.mark.parametrize("version, text", [(12090, "12.9"), (13000, "13.0"), (12010, "12.1"), (11080, "11.8")])
def test_cuda_versions_read_like_nvidia_smi(version: int, text: str) -> None:
    assert cuda.format_cuda_version(version) == text


def test_an_insufficient_driver_says_which_way_to_fix_it() -> None:
    assert cuda.insufficient_driver(0, 13040) == "no NVIDIA driver is installed"
    assert cuda.insufficient_driver(12040, 13000) == (
        'the driver supports CUDA 12.4, cuda-python here is built for CUDA 13.0: update the driver, or pip install "cuda-python<13"'
    )


def test_check_unpacks_results_and_words_failures() -> None:
    cudart = cuda.cuda_runtime()
    errors = cudart.cudaError_t
    assert cuda.check((errors.cudaSuccess,), "syncing") is None
    assert cuda.check((errors.cudaSuccess, 5), "counting") == 5
    assert cuda.check((errors.cudaSuccess, 1, 2), "asking") == (1, 2)
    with pytest.raises(GantoolError, match="^out of GPU memory while allocating outputs: try a smaller --batch-size$"):
        cuda.check((errors.cudaErrorMemoryAllocation, None), "allocating outputs")
    with pytest.raises(BackendUnavailable, match=r"^no usable CUDA driver: .*\(cudaErrorInsufficientDriver\)$"):
        cuda.check((errors.cudaErrorInsufficientDriver, None), "counting GPUs")
    with pytest.raises(BackendUnavailable, match=r"^no usable CUDA GPU: .*\(cudaErrorNoDevice\)$"):
        cuda.check((errors.cudaErrorNoDevice, None), "counting GPUs")
    with pytest.raises(GantoolError, match=r"^CUDA error while copying: .*\(cudaErrorInvalidValue\)$") as other:
        cuda.check((errors.cudaErrorInvalidValue,), "copying")
    assert not isinstance(other.value, BackendUnavailable)


def test_gpu_description_for_doctor() -> None:
    gpu = cuda.GpuInfo(0, "NVIDIA H100 80GB HBM3", "9.0", 81559)
    assert gpu.describe() == "cuda:0 NVIDIA H100 80GB HBM3 (sm 9.0, 81559 MiB)"


# --- the runner's pure decisions --------------------------------------------------------------------------------


def test_batches_are_split_to_the_profile_and_padded_up_to_its_min() -> None:
    profile = Profile("z", "images", (4, 8), (8, 8), (16, 8))
    assert plan_chunks((40, 8), profile) == [(0, 16, 16), (16, 32, 16), (32, 40, 8)]
    assert plan_chunks((2, 8), profile) == [(0, 2, 4)]  # 2 real rows, run as 4
    assert plan_chunks((0, 8), profile) == []


def test_an_image_size_outside_the_profile_is_a_usage_error() -> None:
    profile = profile_for(tiny_translator_spec(size=16), "images", "translated", sizes=((8, 8), None, (32, 32)))
    assert plan_chunks((3, 3, 32, 8), profile) == [(0, 3, 3)]
    with pytest.raises(UsageError, match="outside the engine's profile"):
        plan_chunks((1, 3, 64, 64), profile)


def test_buffer_sizes_and_graph_keys() -> None:
    assert nbytes((64, 3, 256, 256)) == 64 * 3 * 256 * 256 * 4
    assert nbytes((1, 100)) == 400
    key = graph_key(np.zeros((2, 8), np.float32).shape)
    assert key == (2, 8) and key == graph_key((2, 8)) and all(type(side) is int for side in key)


# --- the tensorrt backend without TensorRT ----------------------------------------------------------------------


def test_backend_identity() -> None:
    assert (TensorrtBackend.name, TensorrtBackend.devices, TensorrtBackend.precisions) == (
        "tensorrt",
        ("cuda",),
        ("fp16", "int8"),  # int8: the engine of export --trt --int8
    )
    backend = TensorrtBackend()
    assert (backend.device, backend.precision) == ("cuda", "fp16")


@pytest.mark.skipif(_tensorrt_and_gpu(), reason="TensorRT is installed here")
def test_backend_is_unavailable_without_tensorrt(tiny_checkpoint: Path, fresh_import: None) -> None:
    available = TensorrtBackend.availability()
    assert not available.ok and available.reason.startswith("TensorRT is not installed: pip install")
    probe = TensorrtBackend.probe()
    assert not probe.installed and "TensorRT is not installed" in probe.note
    engine = write_engine(tiny_checkpoint.parent)
    with pytest.raises(BackendUnavailable, match="^the tensorrt backend is unavailable: TensorRT is not installed"):
        TensorrtBackend().load(engine)


def test_resolve_finds_the_engine_from_a_run_dir_checkpoint_or_path(tiny_checkpoint: Path) -> None:
    run = tiny_checkpoint.parent
    with pytest.raises(ArtifactError, match="generator.fp16.engine does not exist: run 'gantool export .* --trt'"):
        TensorrtBackend.resolve(run)
    engine = write_engine(run)
    assert TensorrtBackend.resolve(run) == TensorrtBackend.resolve(tiny_checkpoint) == engine
    assert TensorrtBackend.resolve(engine) == engine


def test_peek_spec_reads_the_sidecar_only(tiny_checkpoint: Path) -> None:
    engine = write_engine(tiny_checkpoint.parent)
    assert TensorrtBackend.peek_spec(engine) == tiny_gan_spec()
    sidecar_path(engine).write_text("{}")
    assert TensorrtBackend.peek_spec(engine) is None
    sidecar_path(engine).unlink()
    assert TensorrtBackend.peek_spec(engine) is None


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, Profile]]:
    """Pretend TensorRT is installed on an H100: records each runner built instead of building one."""
    built: list[tuple[bytes, Profile]] = []

    class RecordingRunner:
        def __init__(self, plan: bytes, profile: Profile, *, where: str) -> None:
            built.append((plan, profile))

    monkeypatch.setattr(TensorrtBackend, "availability", classmethod(lambda cls: Availability(True)))
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: types.SimpleNamespace(__version__="10.13.0.35"))
    monkeypatch.setattr(tensorrt_backend, "machine_facts", lambda trt: H100)
    monkeypatch.setattr(tensorrt_backend, "EngineRunner", RecordingRunner)
    return built


def test_an_engine_without_its_sidecar_is_refused(tiny_checkpoint: Path, installed: list[Any]) -> None:
    engine = write_engine(tiny_checkpoint.parent)
    sidecar_path(engine).unlink()
    with pytest.raises(ArtifactError, match=r"has no sidecar generator.fp16.engine.json: gantool export --trt"):
        TensorrtBackend().load(engine)
    assert installed == []


def test_an_engine_that_is_not_the_sidecars_is_refused(tiny_checkpoint: Path, installed: list[Any]) -> None:
    engine = write_engine(tiny_checkpoint.parent)
    engine.write_bytes(b"another plan")
    with pytest.raises(ArtifactError, match="is not the engine its sidecar describes"):
        TensorrtBackend().load(engine)
    assert installed == []


def test_an_engine_from_another_gpu_is_refused_before_deserialising(
    tiny_checkpoint: Path, installed: list[Any]
) -> None:
    ada = MachineFacts("10.13.0.35", "NVIDIA L4", "8.9", "12.9", "12.9")
    engine = write_engine(tiny_checkpoint.parent, built_on=ada)
    with pytest.raises(BackendUnavailable) as error:
        TensorrtBackend().load(engine)
    assert str(error.value) == (
        f"{engine}: built for compute capability 8.9 (NVIDIA L4), this GPU is 9.0 (NVIDIA H100 80GB HBM3): "
        "rebuild it here with gantool export --trt"
    )
    assert installed == []


def test_a_different_gpu_model_warns_and_loads(
    tiny_checkpoint: Path, installed: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    h200 = dataclasses.replace(H100, gpu_name="NVIDIA H200", cuda_driver="13.0")
    engine = write_engine(tiny_checkpoint.parent, built_on=h200)
    backend = TensorrtBackend()
    backend.load(engine)
    assert backend.spec == tiny_gan_spec() and backend.artifact == engine
    assert installed == [(PLAN, profile_for(tiny_gan_spec(), "z", "images"))]
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 2 and all(line.startswith("warning: generator.fp16.engine: ") for line in warnings)
    assert "running on NVIDIA H100 80GB HBM3" in warnings[0] and "supports CUDA 12.9" in warnings[1]


# --- the CLI on a machine without TensorRT or a GPU --------------------------------------------------------------


@pytest.mark.skipif(_tensorrt_and_gpu(), reason="TensorRT and a GPU are present here")
@pytest.mark.parametrize("flags", [(), ("--backend", "tensorrt")], ids=["auto", "tensorrt"])
def test_generate_from_an_engine_here_is_one_line(
    cli, tiny_checkpoint: Path, tmp_path: Path, flags: Any, fresh_import: None
) -> None:
    engine = write_engine(tiny_checkpoint.parent)
    out = tmp_path / "samples"
    result = cli("generate", engine, "-n", "4", "--out", out, *flags)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "TensorRT" in lines[0], result.stderr
    assert not out.exists()


# --- on a GPU with TensorRT: build, run, compare with PyTorch ----------------------------------------------------


@needs_gpu
def test_gan_engine_matches_pytorch(cli, tmp_path: Path) -> None:
    from gantool.runtime.backends.torch_backend import TorchBackend

    run = tmp_path / "run"
    make_checkpoint(run)
    result = cli("export", run, "--trt", "--max-batch", "16")
    assert result.exit_code == 0, result.stderr
    engine = TensorrtBackend()
    engine.load(run)
    reference = TorchBackend()
    reference.load(run)
    latents = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)  # 3 chunks: 16, 16, 8
    want = reference.run(latents)
    for _ in range(2):  # the second pass replays the CUDA graphs captured in the first
        got = engine.run(latents)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert float(np.max(np.abs(got - want))) <= 1e-2
    out = tmp_path / "samples.npz"
    generated = cli("generate", run, "--backend", "tensorrt", "-n", "20", "--out", out)
    assert generated.exit_code == 0, generated.stderr
    assert np.load(out)["images"].shape == (20, 8, 8, 1)


@needs_gpu
def test_translator_engine_matches_pytorch(cli, tmp_path: Path) -> None:
    from gantool.runtime.backends.torch_backend import TorchBackend

    run = make_translator_run(tmp_path / "run")
    result = cli("export", run, "--trt", "--max-batch", "4", "--min-size", "8", "--max-size", "32")
    assert result.exit_code == 0, result.stderr
    engine = TensorrtBackend()
    engine.load(run, "b2a")
    reference = TorchBackend()
    reference.load(run, "b2a")
    for shape in [(6, 3, 16, 16), (1, 3, 32, 8), (1, 3, 32, 8)]:
        images = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
        assert float(np.max(np.abs(engine.run(images) - reference.run(images)))) <= 1e-2
    with pytest.raises(UsageError, match="outside the engine's profile"):
        engine.run(np.zeros((1, 3, 64, 64), np.float32))
