"""``gantool generate``: output kinds and names, refusals, exit codes, and a lean onnxruntime path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_checkpoint
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime.generator import Generator
from gantool.runtime.writers import MANIFEST, DirectoryWriter, sample_name


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("exported") / "run"
    export_checkpoint(make_checkpoint(run), run)
    return run


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_folder_gets_one_png_per_sample(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    result = cli("generate", exported_run, "-n", "12", "--batch-size", "5", "--seed", "2", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST] + [f"{i:06d}.png" for i in range(12)]
    first = np.asarray(Image.open(out / "000000.png"))
    assert np.array_equal(first, Generator.open(exported_run).sample(1, seed=2)[0, :, :, 0])
    assert "(auto: measured now at batch 5: " in result.stderr and "wrote 12 images" in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_sample_names_sort_in_order_and_widen_when_needed() -> None:
    assert sample_name(9, 10) == "000009.png"
    assert sample_name(1_234_566, 1_234_567) == "1234566.png"
    assert sample_name(5, 1_234_567) == "0000005.png"


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_npz_holds_images_and_seed(cli, exported_run: Path, tmp_path: Path, backend: str) -> None:
    out = tmp_path / "samples.npz"
    result = cli("generate", exported_run, "-n", "9", "--seed", "7", "--backend", backend, "--out", out)
    assert result.exit_code == 0, result.stderr
    with np.load(out) as data:
        assert data["images"].shape == (9, 8, 8, 1) and data["images"].dtype == np.uint8
        assert int(data["seed"]) == 7
        expected = Generator.open(exported_run, backend=backend).sample(9, seed=7)
        assert np.array_equal(data["images"], expected)


def test_a_png_file_gets_one_grid(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert cli("generate", exported_run, "-n", "5", "--out", out).exit_code == 0
    assert Image.open(out).size == (3 * 10 + 2, 2 * 10 + 2)  # 3 columns × 2 rows of 8 px images, 2 px padding


def test_existing_output_is_refused_untouched_and_force_replaces(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("generate", exported_run, "-n", "3", "--out", out)
    assert result.exit_code == 2 and "--force" in _one_error_line(result)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert cli("generate", exported_run, "-n", "3", "--out", out, "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "000000.png", "000001.png", "000002.png"]


@pytest.mark.parametrize("flags", [["-n", "0"], ["--batch-size", "0"], ["-n", "-3"], ["--backend", "tensorflow"]])
def test_bad_flags_exit_2(cli, exported_run: Path, tmp_path: Path, flags: list[str]) -> None:
    result = cli("generate", exported_run, *flags, "--out", tmp_path / "x.npz")
    assert result.exit_code == 2
    line = _one_error_line(result)
    if "tensorflow" in flags:
        assert "auto, torch, torch-compile, onnxruntime, onnxruntime-trt, tensorrt" in line
    assert not (tmp_path / "x.npz").exists()


def test_unwritable_output_is_one_line(cli, exported_run: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = cli("generate", exported_run, "--out", tmp_path / "file" / "samples")
    assert result.exit_code == 2 and "not a directory" in _one_error_line(result)


def test_model_problems_are_one_line(cli, exported_run: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    assert "does not exist" in _one_error_line(cli("generate", tmp_path / "missing", "--out", out))
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00garbage")
    assert "corrupt.onnx" in _one_error_line(cli("generate", tmp_path / "corrupt.onnx", "--out", out))
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    assert "bad.safetensors" in _one_error_line(cli("generate", tmp_path / "bad.safetensors", "--out", out))
    line = _one_error_line(cli("generate", tiny_checkpoint.parent, "--backend", "onnxruntime", "--out", out))
    assert "gantool export" in line and "first" in line
    assert not out.exists()


def test_a_failed_run_keeps_only_complete_files(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    with pytest.raises(RuntimeError, match="boom"), DirectoryWriter(out, 4) as writer:
        writer.write(0, np.zeros((2, 8, 8, 1), np.uint8))
        raise RuntimeError("boom")
    names = {p.name for p in out.iterdir()}  # the manifest and the PNGs finished before the error, for --resume
    assert MANIFEST in names and names <= {MANIFEST, "000000.png", "000001.png"}
    with pytest.raises(RuntimeError, match="boom"), DirectoryWriter(tmp_path / "none", 4):
        raise RuntimeError("boom")
    assert not (tmp_path / "none").exists()  # nothing written: no folder either


def test_generate_from_onnx_imports_neither_torch_nor_onnx(exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npz"
    code = (
        "import sys; from gantool.cli import app; "
        f"app(['generate', {str(exported_run / 'generator.onnx')!r}, '-n', '3', '--out', {str(out)!r}], standalone_mode=False); "
        "heavy = [m for m in ('torch', 'onnx', 'sklearn', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.exists()


def test_device_and_precision_on_the_cpu(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "fp16.npz"
    result = cli("generate", exported_run, "-n", "6", "--device", "cpu", "--precision", "fp16", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "backend: onnxruntime (auto: found generator.fp16.onnx" in result.stderr
    assert "onnxruntime on cpu, fp16" in result.stderr
    with np.load(out) as data:
        fp32 = Generator.open(exported_run, device="cpu").sample(6, seed=0)
        assert np.abs(data["images"].astype(int) - fp32).max() <= 2
    result = cli("generate", exported_run, "-n", "2", "--backend", "torch", "--device", "cpu", "--out", tmp_path / "t")
    assert result.exit_code == 0 and "torch on cpu, fp32" in result.stderr


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (["--device", "gpu"], 2, "--device must be one of auto, cpu, cuda, got 'gpu'"),
        (["--precision", "fp8"], 2, "--precision must be one of fp32, fp16, bf16, int8, got 'fp8'"),
        (["--backend", "torch", "--precision", "fp16"], 2, "fp16 on the torch backend needs --device cuda"),
        (["--backend", "onnxruntime-trt", "--device", "cpu"], 2, "the onnxruntime-trt backend runs on cuda, not cpu"),
        (["--backend", "torch-compile", "--precision", "fp16", "--device", "cpu"], 2, "fp16 on the torch-compile"),
        (["--model-is-an-engine"], 2, "is a TensorRT engine: it runs on cuda only"),
    ],
)
def test_bad_device_and_precision_exit_2(
    cli, exported_run: Path, tmp_path: Path, flags: list[str], code: int, message: str
) -> None:
    model = exported_run
    if flags == ["--model-is-an-engine"]:
        model, flags = tmp_path / "g.fp16.engine", ["--device", "cpu"]
        model.write_bytes(b"plan")
    result = cli("generate", model, *flags, "--out", tmp_path / "x.npz")
    assert result.exit_code == code and message in _one_error_line(result)
    assert not (tmp_path / "x.npz").exists()
