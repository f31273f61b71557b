"""gantool export: checked FP32/FP16 ONNX files, or one clear line and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import make_checkpoint
from gantool.artifacts import onnx_path_for
from gantool.checkpoint import load_generator, read_spec
from gantool.errors import GantoolError
from gantool.export import onnx_export
from gantool.export.onnx_export import ExportResult, export_checkpoint
from gantool.latents import latent_batch
from gantool.spec import METADATA_KEY, ModelSpec


@pytest.fixture(scope="module", params=["mlp", "dcgan"])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[ExportResult]]:
    """One tiny checkpoint per architecture, exported once through the Python API."""
    checkpoint = make_checkpoint(tmp_path_factory.mktemp(request.param), request.param)
    return checkpoint, export_checkpoint(checkpoint, checkpoint.parent)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_export_writes_both_files_beside_the_checkpoint(exported: tuple[Path, list[ExportResult]]) -> None:
    checkpoint, results = exported
    assert [(r.path, r.precision) for r in results] == [
        (onnx_path_for(checkpoint, checkpoint.parent, "fp32"), "fp32"),
        (onnx_path_for(checkpoint, checkpoint.parent, "fp16"), "fp16"),
    ]
    assert [r.tolerance for r in results] == [1e-4, 1e-2]
    assert all(0.0 <= r.max_abs_diff <= r.tolerance for r in results)
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == [
        "generator.fp16.onnx",
        "generator.onnx",
        "generator.safetensors",
    ]


def test_files_pass_the_checker_and_carry_the_spec(exported: tuple[Path, list[ExportResult]]) -> None:
    checkpoint, results = exported
    for result in results:
        onnx.checker.check_model(str(result.path), full_check=True)
        model = onnx.load(str(result.path), load_external_data=False)
        assert model.producer_name == "gantool"
        assert [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")] == [18]
        assert all(init.data_location == onnx.TensorProto.DEFAULT for init in model.graph.initializer)
        metadata = {prop.key: prop.value for prop in model.metadata_props}
        assert ModelSpec.from_json(metadata[METADATA_KEY]) == read_spec(checkpoint)


def test_batch_axis_is_dynamic_and_outputs_match_pytorch(exported: tuple[Path, list[ExportResult]]) -> None:
    checkpoint, results = exported
    module, spec = load_generator(checkpoint)
    for result in results:
        session = _session(result.path)
        for batch in (3, 5):
            z = latent_batch(7, 0, batch, spec.latent_dim)
            (images,) = session.run(["images"], {"z": z})
            assert images.dtype == np.float32 and images.shape == (batch, *spec.image_shape)
            with torch.no_grad():
                expected = module(torch.from_numpy(z)).numpy()
            assert np.abs(images - expected).max() <= result.tolerance


def test_fp16_file_has_fp16_weights_and_float32_io(exported: tuple[Path, list[ExportResult]]) -> None:
    _, results = exported
    fp32, fp16 = (onnx.load(str(r.path)) for r in results)
    weights = {init.data_type for init in fp16.graph.initializer} - {onnx.TensorProto.INT64}
    assert weights == {onnx.TensorProto.FLOAT16}
    assert onnx.TensorProto.FLOAT in {init.data_type for init in fp32.graph.initializer}
    for model in (fp32, fp16):
        io = list(model.graph.input) + list(model.graph.output)
        assert [(v.name, v.type.tensor_type.elem_type) for v in io] == [
            ("z", onnx.TensorProto.FLOAT),
            ("images", onnx.TensorProto.FLOAT),
        ]


def test_cli_prints_a_parity_table(tiny_checkpoint: Path, cli) -> None:
    result = cli("export", tiny_checkpoint.parent)
    assert result.exit_code == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["file", "precision", "max", "abs", "diff", "tolerance", "status"]
    assert [(Path(r[0]).name, r[1], r[3], r[4]) for r in rows[1:]] == [
        ("generator.onnx", "fp32", "1e-04", "ok"),
        ("generator.fp16.onnx", "fp16", "1e-02", "ok"),
    ]
    assert float(rows[1][2]) <= 1e-4 and float(rows[2][2]) <= 1e-2
    assert "[torch.onnx]" not in result.stderr and "Warning" not in result.stderr  # the exporter is silenced
    assert "max abs diff" in result.stderr  # progress goes to stderr


def test_cli_json_and_out_dir(tiny_checkpoint: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "onnx"
    result = cli("export", tiny_checkpoint, "--out", out, "--json", "--opset", "17")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(Path(r["path"]).parent, r["precision"], r["ok"]) for r in rows] == [
        (out, "fp32", True),
        (out, "fp16", True),
    ]
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["generator.safetensors"]
    model = onnx.load(str(out / "generator.onnx"))
    assert [op.version for op in model.opset_import if op.domain in ("", "ai.onnx")] == [17]


def test_existing_files_need_force(tiny_checkpoint: Path, cli) -> None:
    assert cli("export", tiny_checkpoint).exit_code == 0
    before = _snapshot(tiny_checkpoint.parent)
    refused = cli("export", tiny_checkpoint)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert _snapshot(tiny_checkpoint.parent) == before
    forced = cli("export", tiny_checkpoint, "--force")
    assert forced.exit_code == 0, forced.stderr
    after = _snapshot(tiny_checkpoint.parent)
    assert after.keys() == before.keys()
    assert after["generator.onnx"][1] > before["generator.onnx"][1]


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"\x00not a safetensors file" * 8)
    return path


def _foreign(tmp_path: Path) -> Path:
    from safetensors.numpy import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros(3, np.float32)}, str(path))
    return path


def _truncated(tmp_path: Path) -> Path:
    data = make_checkpoint(tmp_path / "full").read_bytes()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (_garbage, "not a readable safetensors checkpoint"),
        (_truncated, "not a readable safetensors checkpoint"),
        (_foreign, "not a gantool checkpoint"),
    ],
)
def test_bad_checkpoints_fail_in_one_line(tmp_path: Path, cli, make, message: str) -> None:
    checkpoint = make(tmp_path)
    out = tmp_path / "out"
    result = cli("export", checkpoint, "--out", out)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("opset", ["16", "999"])
def test_bad_opset_is_a_usage_error(tiny_checkpoint: Path, cli, opset: str) -> None:
    result = cli("export", tiny_checkpoint, "--opset", opset)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == ["generator.safetensors"]


def test_failed_parity_leaves_no_file(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tiny_checkpoint.parent
    monkeypatch.setattr(onnx_export, "TOLERANCES", {"fp32": 1e-4, "fp16": -1.0})  # FP32 passes, FP16 cannot
    with pytest.raises(GantoolError, match="generator.fp16.onnx differs from PyTorch"):
        export_checkpoint(tiny_checkpoint, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["generator.safetensors"]  # not even the good FP32 file

    monkeypatch.undo()
    export_checkpoint(tiny_checkpoint, folder)
    before = _snapshot(folder)
    monkeypatch.setattr(onnx_export, "TOLERANCES", {"fp32": -1.0, "fp16": 1e-2})
    with pytest.raises(GantoolError, match="generator.onnx differs"):
        export_checkpoint(tiny_checkpoint, folder, force=True)
    assert _snapshot(folder) == before  # a failed --force keeps the previous export
