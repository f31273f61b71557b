"""gantool export on CycleGAN runs: both directions, one file per precision serving any image size.

A translator file maps ``images`` [batch, C, height, width] to ``translated``
of the same shape, batch, height and width all dynamic. The tiny translators
(3×16×16 native, ngf 4, one block) export in seconds; the run is exported once
per module and the refusals below never reach the exporter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import make_checkpoint, make_translator_run, tiny_translator_spec
from gantool.checkpoint import load_generator, read_spec, save_generator
from gantool.errors import GantoolError
from gantool.export import onnx_export
from gantool.export.onnx_export import export_checkpoints
from gantool.models import build_generator
from gantool.spec import METADATA_KEY, PRECISION_KEY, ModelSpec

FILES = ["generator_a2b.onnx", "generator_a2b.fp16.onnx", "generator_b2a.onnx", "generator_b2a.fp16.onnx"]
CHECKPOINTS = ["generator_a2b.safetensors", "generator_b2a.safetensors"]
TOLERANCE = {"generator_a2b.onnx": 1e-4, "generator_b2a.onnx": 1e-4}  # FP16 files: 1e-2


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[str]], str]:
    """A tiny CycleGAN run exported once with ``gantool export RUN``: (run dir, table rows, stderr)."""
    from typer.testing import CliRunner

    from gantool.cli import app

    run = make_translator_run(tmp_path_factory.mktemp("cyclegan") / "run")
    result = CliRunner().invoke(app, ["export", str(run)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return run, [line.split() for line in result.stdout.splitlines()], result.stderr


def _translate(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["translated"], {"images": images})[0]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_run_dir_exports_both_directions_in_one_table(exported: tuple[Path, list[list[str]], str]) -> None:
    run, rows, stderr = exported
    assert rows[0] == ["file", "precision", "max", "abs", "diff", "tolerance", "status"]
    assert [(Path(r[0]).name, r[1], r[3], r[4]) for r in rows[1:]] == [
        ("generator_a2b.onnx", "fp32", "1e-04", "ok"),
        ("generator_a2b.fp16.onnx", "fp16", "1e-02", "ok"),
        ("generator_b2a.onnx", "fp32", "1e-04", "ok"),
        ("generator_b2a.fp16.onnx", "fp16", "1e-02", "ok"),
    ]
    assert _names(run) == sorted(FILES + CHECKPOINTS)
    assert stderr.count("max abs diff vs PyTorch") == 4


def test_files_pass_the_checker_and_carry_their_direction(exported: tuple[Path, list[list[str]], str]) -> None:
    run, _, _ = exported
    for name in FILES:
        onnx.checker.check_model(str(run / name), full_check=True)
        model = onnx.load(str(run / name))
        metadata = {prop.key: prop.value for prop in model.metadata_props}
        spec = ModelSpec.from_json(metadata[METADATA_KEY])
        direction = name.split(".")[0].removeprefix("generator_")
        assert spec == read_spec(run / f"generator_{direction}.safetensors") and spec.direction == direction
        assert metadata[PRECISION_KEY] == ("fp16" if ".fp16." in name else "fp32")
        assert model.producer_name == "gantool" and f"{direction} translator" in model.doc_string


def test_images_in_translated_out_with_batch_height_and_width_dynamic(
    exported: tuple[Path, list[list[str]], str],
) -> None:
    run, _, _ = exported
    for name in FILES:
        graph = onnx.load(str(run / name)).graph
        for value, want in ((graph.input, "images"), (graph.output, "translated")):
            (tensor,) = value
            dims = [d.dim_param or d.dim_value for d in tensor.type.tensor_type.shape.dim]
            assert (tensor.name, tensor.type.tensor_type.elem_type) == (want, onnx.TensorProto.FLOAT)
            assert dims == ["batch", 3, "height", "width"]


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (2, 3, 20, 28), (3, 3, 8, 12)])
def test_one_file_translates_any_multiple_of_4(exported: tuple[Path, list[list[str]], str], shape) -> None:
    run, _, _ = exported
    images = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    for name in FILES:
        module, _ = load_generator(run / (name.split(".")[0] + ".safetensors"))
        with torch.inference_mode():
            expected = module(torch.from_numpy(images)).numpy()
        translated = _translate(run / name, images)
        assert translated.dtype == np.float32 and translated.shape == shape
        assert np.abs(translated - expected).max() <= TOLERANCE.get(name, 1e-2)


def test_fp16_files_hold_fp16_weights_behind_float32_io(exported: tuple[Path, list[list[str]], str]) -> None:
    run, _, _ = exported
    for direction in ("a2b", "b2a"):
        fp32, fp16 = (onnx.load(str(run / f"generator_{direction}{suffix}")) for suffix in (".onnx", ".fp16.onnx"))
        assert {i.data_type for i in fp16.graph.initializer} - {onnx.TensorProto.INT64} == {onnx.TensorProto.FLOAT16}
        assert onnx.TensorProto.FLOAT in {i.data_type for i in fp32.graph.initializer}
        io = [*fp16.graph.input, *fp16.graph.output]
        assert [v.type.tensor_type.elem_type for v in io] == [onnx.TensorProto.FLOAT] * 2


@pytest.mark.parametrize("existing", FILES)
def test_any_one_existing_output_refuses_the_whole_export(tmp_path: Path, cli, existing: str) -> None:
    run = make_translator_run(tmp_path / "run")
    (run / existing).write_bytes(b"an older export")
    result = cli("export", run)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert existing in result.stderr and "--force" in result.stderr
    assert _names(run) == sorted([existing, *CHECKPOINTS])  # refused before any work: nothing else appeared
    assert (run / existing).read_bytes() == b"an older export"


def test_a_failing_direction_leaves_nothing_of_either(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_translator_run(tmp_path / "run")
    real = onnx_export.max_abs_diff

    def b2a_drifts(path: Path, *args: object) -> float:  # a2b's two files pass for real; b2a's first one fails
        return float("inf") if "b2a" in path.name else real(path, *args)

    monkeypatch.setattr(onnx_export, "max_abs_diff", b2a_drifts)
    checkpoints = [run / name for name in CHECKPOINTS]
    with pytest.raises(GantoolError, match="generator_b2a.onnx differs from PyTorch"):
        export_checkpoints(checkpoints, run)
    assert _names(run) == CHECKPOINTS  # not even a2b's good files, and no temporary files


def test_a_single_checkpoint_exports_just_it(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_translator_run(tmp_path / "run")
    calls: list[list[Path]] = []
    monkeypatch.setattr(onnx_export, "export_checkpoints", lambda checkpoints, *a, **k: calls.append(checkpoints) or [])
    assert cli("export", run / "generator_b2a.safetensors").exit_code == 0
    assert cli("export", run).exit_code == 0
    assert calls == [[run / "generator_b2a.safetensors"], [run / name for name in CHECKPOINTS]]


def _gan_named_a2b(run: Path) -> None:
    shutil.copy(make_checkpoint(run.parent / "gan"), run / "generator_a2b.safetensors")


def _b2a_named_a2b(run: Path) -> None:
    shutil.copy(run / "generator_b2a.safetensors", run / "generator_a2b.safetensors")


def _translator_named_gan(run: Path) -> None:
    shutil.copy(run / "generator_a2b.safetensors", run / "generator.safetensors")


@pytest.mark.parametrize(
    ("swap", "message"),
    [
        (_gan_named_a2b, "named as the a2b translator but holds a gan (mlp) generator"),
        (_b2a_named_a2b, "named as the a2b translator but holds the b2a translator"),
        (_translator_named_gan, "named as a GAN generator but holds a cyclegan translator"),
    ],
)
def test_a_checkpoint_that_is_not_what_its_name_says_is_refused(tmp_path: Path, cli, swap, message: str) -> None:
    run = make_translator_run(tmp_path / "run")
    swap(run)
    before = _names(run)
    result = cli("export", run)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message in result.stderr
    assert _names(run) == before


@pytest.mark.parametrize("size", [18, 4])
def test_a_translator_whose_native_size_it_cannot_take_is_refused(tmp_path: Path, cli, size: int) -> None:
    spec = tiny_translator_spec("a2b", size=size)
    checkpoint = tmp_path / "odd.safetensors"
    save_generator(build_generator(spec).eval(), spec, checkpoint)
    result = cli("export", checkpoint)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert f"{size}×{size}" in result.stderr and "multiples of 4" in result.stderr
    assert _names(tmp_path) == ["odd.safetensors"]
