"""Runtime: backends, the registry and its auto rule, the Generator API, and ONNX files gantool must refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import gantool
from conftest import make_checkpoint, tiny_gan_spec
from gantool.errors import ArtifactError, BackendUnavailable, UsageError
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import gpu, registry
from gantool.runtime.generator import Generator
from gantool.runtime.onnx_file import TENSOR_PATHS
from gantool.spec import METADATA_KEY, ModelSpec

BACKENDS = ["torch", "onnxruntime"]


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir with a tiny checkpoint and its FP32 and FP16 ONNX exports (exported once per module)."""
    run = tmp_path_factory.mktemp("exported") / "run"
    checkpoint = make_checkpoint(run)
    export_checkpoint(checkpoint, run)
    return run


def _rewrite_onnx(source: Path, target: Path, spec_json: str | None) -> Path:
    """Copy an ONNX file with its gantool spec replaced (or removed, with None)."""
    model = onnx.load(str(source))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept + ([(METADATA_KEY, spec_json)] if spec_json is not None else []):
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(target))
    return target


def test_importing_the_registry_imports_no_engine() -> None:
    code = (
        "import json, sys; from gantool.runtime import registry; "
        "print(json.dumps({n: registry.availability(n).ok for n in registry.names()})); "
        "heavy = [m for m in ('torch', 'onnxruntime', 'tensorrt') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    available = json.loads(result.stdout)
    assert list(available) == ["torch", "torch-compile", "onnxruntime", "onnxruntime-trt", "tensorrt"]
    assert available["torch"] and available["onnxruntime"]


def test_unknown_backend_lists_the_choices() -> None:
    with pytest.raises(
        UsageError, match="choose from: auto, torch, torch-compile, onnxruntime, onnxruntime-trt, tensorrt"
    ):
        registry.backend_class("tensorflow")


def test_a_backend_that_is_not_installed_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, exported_run: Path
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "missing", "conftest:NotInstalledBackend")
    assert not registry.availability("missing").ok
    with pytest.raises(BackendUnavailable, match="pip install gantool-no-such-engine"):
        registry.create("missing", exported_run)


def test_auto_weighs_onnxruntime_against_torch_when_an_export_exists(exported_run: Path, tiny_checkpoint: Path) -> None:
    assert registry.choose(exported_run / "generator.onnx").name == "onnxruntime"
    found = registry.candidates(exported_run, None, "cpu", None, gpu.scan())
    assert [(c.name, c.device, c.precision) for c in found] == [
        ("onnxruntime", "cpu", "fp32"),
        ("torch", "cpu", "fp32"),
    ]
    choice = registry.choose(exported_run, device="cpu")  # measured: which wins is the machine's business
    assert choice.name in ("onnxruntime", "torch") and "measured now at batch 64" in choice.reason
    assert registry.choose(exported_run, precision="fp16").precision == "fp16"  # the .fp16.onnx: torch is fp32 on cpu
    choice = registry.choose(tiny_checkpoint.parent)  # a run dir that was never exported
    assert choice.name == "torch" and "no exported ONNX" in choice.reason


def test_auto_ignores_an_export_older_than_its_checkpoint(tmp_path: Path) -> None:
    import os

    run = tmp_path / "run"
    checkpoint = make_checkpoint(run)
    (run / "generator.onnx").write_bytes(b"stale")
    os.utime(run / "generator.onnx", (0, 0))  # exported long before the checkpoint was (re)written
    choice = registry.choose(run)
    assert choice.name == "torch" and "older than the checkpoint" in choice.reason
    assert registry.choose(checkpoint, "onnxruntime").name == "onnxruntime"  # asked for by name: no second-guessing


@pytest.mark.parametrize("precision_file", ["generator.onnx", "generator.fp16.onnx"])
def test_torch_and_onnxruntime_give_the_same_images(exported_run: Path, precision_file: str) -> None:
    reference = Generator.open(exported_run, backend="torch").sample(32, seed=5)
    onnx_images = Generator.open(exported_run / precision_file, backend="onnxruntime").sample(32, seed=5)
    assert onnx_images.shape == reference.shape == (32, 8, 8, 1)
    assert np.abs(onnx_images.astype(int) - reference.astype(int)).max() <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_images_whatever_the_batch_size(exported_run: Path, backend: str) -> None:
    gen = Generator.open(exported_run, backend=backend)
    one, seven, many = (gen.sample(20, seed=3, batch_size=b) for b in (1, 7, 64))
    assert np.array_equal(one, seven) and np.array_equal(one, many)
    assert not np.array_equal(one, gen.sample(20, seed=4))
    assert np.array_equal(gen.sample(5, seed=3), one[:5])  # sample i depends on (seed, i) only


def test_iter_batches_streams_in_order(exported_run: Path) -> None:
    gen = Generator.open(exported_run)
    batches = list(gen.iter_batches(10, seed=0, batch_size=4))
    assert [(start, len(batch)) for start, batch in batches] == [(0, 4), (4, 4), (8, 2)]
    assert np.array_equal(np.concatenate([b for _, b in batches]), gen.sample(10, seed=0))
    with pytest.raises(UsageError):
        gen.sample(3, seed=-1)


def test_python_api_load_and_torch_module(exported_run: Path) -> None:
    import torch

    gen = gantool.load(exported_run)
    images = gen.sample(6, seed=1)
    assert gen.backend == "onnxruntime" and gen.spec == tiny_gan_spec()
    assert (gen.device, gen.precision) == ("cpu", "fp32")
    assert images.shape == (6, 8, 8, 1) and images.dtype == np.uint8
    module = gantool.torch_module(exported_run)
    assert isinstance(module, torch.nn.Module) and not module.training
    assert tuple(module(torch.zeros(2, 8)).shape) == (2, 1, 8, 8)


def test_warmup_runs_the_backend(exported_run: Path) -> None:
    backend = registry.create("onnxruntime", exported_run)
    assert backend.warmup(3) >= 2 and backend.describe() == "onnxruntime (cpu, fp32)"
    assert backend.run(np.zeros((3, 8), np.float32)).shape == (3, 1, 8, 8)


def test_onnxruntime_path_never_imports_torch(exported_run: Path) -> None:
    code = (
        "import sys, gantool; "
        f"images = gantool.load({str(exported_run / 'generator.onnx')!r}).sample(4); "
        "assert images.shape == (4, 8, 8, 1); "
        "heavy = [m for m in ('torch', 'onnx', 'sklearn', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_an_onnx_without_gantool_metadata_is_refused(exported_run: Path, tmp_path: Path) -> None:
    bare = _rewrite_onnx(exported_run / "generator.onnx", tmp_path / "bare.onnx", None)
    with pytest.raises(ArtifactError, match="not a gantool model"):
        Generator.open(bare)


def test_a_translator_cannot_sample(exported_run: Path, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    translator = ModelSpec(
        kind="cyclegan",
        arch="resnet",
        arch_params={"ngf": 4, "blocks": 1},
        channels=1,
        height=8,
        width=8,
        direction="a2b",
    )
    onnx_file = _rewrite_onnx(exported_run / "generator.onnx", tmp_path / "a2b.onnx", translator.to_json())
    checkpoint = tmp_path / "a2b.safetensors"
    save_file({"w": np.zeros(1, np.float32)}, str(checkpoint), metadata={METADATA_KEY: translator.to_json()})
    for model in (onnx_file, checkpoint):
        with pytest.raises(UsageError, match="translator"):
            Generator.open(model)


@pytest.mark.parametrize("content", [b"not an onnx file at all", b"\x08\x07\x3a\xff\xff\xff\x0f", b""])
def test_a_corrupt_onnx_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(ArtifactError) as caught:
        Generator.open(path)
    assert "broken.onnx" in str(caught.value) and "\n" not in str(caught.value)


def test_a_truncated_onnx_is_refused(exported_run: Path, tmp_path: Path) -> None:
    data = (exported_run / "generator.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cut.onnx"):
        Generator.open(path)


def test_external_data_is_refused_without_opening_it(exported_run: Path, tmp_path: Path) -> None:
    model = onnx.load(str(exported_run / "generator.onnx"))
    onnx.save(model, str(tmp_path / "split.onnx"), save_as_external_data=True, location="weights.bin", size_threshold=0)
    (tmp_path / "weights.bin").unlink()  # were the file opened, onnxruntime would fail with a different error
    with pytest.raises(ArtifactError, match="external files"):
        Generator.open(tmp_path / "split.onnx")


def test_the_external_data_scan_covers_every_path_to_a_tensor() -> None:
    """TENSOR_PATHS must list every field of every message that can hold a tensor, with onnx's numbers."""
    from onnx import onnx_ml_pb2

    tensor_holders = set(TENSOR_PATHS)
    for message, fields in TENSOR_PATHS.items():
        descriptor = getattr(onnx_ml_pb2, message).DESCRIPTOR
        expected = {
            f.number: f.message_type.name
            for f in descriptor.fields
            if f.message_type and f.message_type.name in tensor_holders
        }
        assert fields == expected, message
    tensor = onnx_ml_pb2.TensorProto.DESCRIPTOR.fields_by_name
    assert (tensor["external_data"].number, tensor["data_location"].number) == (13, 14)


def test_missing_artifacts_say_which_command_makes_them(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"run 'gantool export .*' first"):
        Generator.open(tiny_checkpoint.parent, backend="onnxruntime")
    with pytest.raises(ArtifactError, match="does not exist"):
        Generator.open(tmp_path / "nowhere")
    (tmp_path / "g.onnx").write_bytes(b"")
    with pytest.raises(ArtifactError, match="torch backend needs the checkpoint"):
        Generator.open(tmp_path / "g.onnx", backend="torch")
