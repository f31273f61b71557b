"""``gantool translate`` and the Translator API: inputs, names, modes, sizes, directions, backends, failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gantool
from conftest import make_checkpoint, make_translator_run
from gantool.artifacts import checkpoint_in
from gantool.errors import GantoolError, UsageError
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import registry
from gantool.runtime.image_io import MANIFEST, collect_inputs
from gantool.runtime.translator import Translator, padded_size

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CycleGAN run dir: both tiny translators (3×16×16 native), the a2b one exported to FP32 and FP16 ONNX."""
    run = make_translator_run(tmp_path_factory.mktemp("cyclegan") / "run")
    export_checkpoint(checkpoint_in(run, "a2b"), run)
    return run


def _save(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Write random pixels of ``shape`` (H×W grey, H×W×3 RGB) as an image file; returns them."""
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_folders_files_and_globs_keep_their_names(cli, run: Path, tmp_path: Path) -> None:
    _save(tmp_path / "photos" / "a.png", (16, 16, 3))
    _save(tmp_path / "photos" / "2024" / "a.jpg", (20, 12, 3))  # same stem, other sub-folder: no clash
    (tmp_path / "photos" / "notes.txt").write_text("not an image: ignored in a folder")
    _save(tmp_path / "single.bmp", (16, 16, 3))
    _save(tmp_path / "shots" / "x1.png", (16, 16, 3))
    _save(tmp_path / "shots" / "x2.png", (16, 16, 3))
    out = tmp_path / "out"
    result = cli(
        "translate", run, tmp_path / "photos", tmp_path / "single.bmp", tmp_path / "shots" / "x*.png", "--out", out
    )
    assert result.exit_code == 0, result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["2024/a.png", "a.png", "single.png", "x1.png", "x2.png"]
    assert _read(out / "2024" / "a.png").shape == (16, 16, 3)  # default: the model's native size
    assert "wrote 5 images" in result.stderr and "images/s" in result.stderr


def test_two_inputs_with_one_output_name_are_refused_before_any_work(cli, run: Path, tmp_path: Path) -> None:
    _save(tmp_path / "in" / "x.png", (16, 16, 3))
    _save(tmp_path / "in" / "x.jpg", (16, 16, 3))
    result = cli("translate", run, tmp_path / "in", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "would both be written as x.png" in _one_error_line(result)
    assert not (tmp_path / "out").exists()
    assert len(collect_inputs([tmp_path / "in" / "x.png", tmp_path / "in" / "x.png"])) == 1  # the same file twice
    for missing in ("nowhere", "*.webp"):
        assert cli("translate", run, tmp_path / missing, "--out", tmp_path / "out").exit_code == 2


def test_grey_palette_and_rgba_inputs_are_converted_to_the_models_rgb(cli, run: Path, tmp_path: Path) -> None:
    rgb = _save(tmp_path / "in" / "rgb.png", (16, 16, 3))
    grey = _save(tmp_path / "in" / "grey.png", (16, 16))
    Image.fromarray(np.concatenate([rgb, np.full((16, 16, 1), 7, np.uint8)], axis=2)).save(tmp_path / "in" / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "in" / "palette.png")
    Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(tmp_path / "grey_as_rgb.png")
    out = tmp_path / "out"
    assert cli("translate", run, tmp_path / "in", tmp_path / "grey_as_rgb.png", "--out", out).exit_code == 0
    for name in ("rgb", "grey", "rgba", "palette"):
        assert Image.open(out / f"{name}.png").mode == "RGB"
    assert np.array_equal(_read(out / "rgba.png"), _read(out / "rgb.png"))  # alpha dropped
    assert np.array_equal(_read(out / "grey.png"), _read(out / "grey_as_rgb.png"))  # grey = R = G = B


def test_sizes_keep_size_and_the_native_default(cli, run: Path, tmp_path: Path) -> None:
    odd = _save(tmp_path / "in" / "odd.png", (18, 13, 3))
    outputs = {}
    for flags in ([], ["--size", "24"], ["--keep-size"]):
        out = tmp_path / f"out{len(outputs)}"
        assert cli("translate", run, tmp_path / "in", "--out", out, "--backend", "torch", *flags).exit_code == 0
        outputs[" ".join(flags)] = _read(out / "odd.png")
    assert outputs[""].shape == (16, 16, 3) and outputs["--size 24"].shape == (24, 24, 3)
    assert outputs["--keep-size"].shape == (18, 13, 3)  # padded to 20×16 by reflection, cropped back
    translator = Translator.open(run, backend="torch")
    assert padded_size(18, 13) == (20, 16) and padded_size(3, 8) == (8, 8)
    reflected = np.pad(odd, ((0, 2), (0, 3), (0, 0)), mode="reflect")
    assert np.array_equal(outputs["--keep-size"], translator.translate(reflected[None])[0, :18, :13])
    assert np.array_equal(outputs["--keep-size"], translator.translate(odd[None])[0])
    for flags in (["--size", "6"], ["--size", "18"], ["--size", "16", "--keep-size"], ["--direction", "c2d"]):
        result = cli("translate", run, tmp_path / "in", "--out", tmp_path / "refused", *flags)
        assert result.exit_code == 2, flags
        assert _one_error_line(result)
    assert not (tmp_path / "refused").exists()


def test_direction_picks_the_checkpoint(cli, run: Path, tmp_path: Path) -> None:
    image = _save(tmp_path / "in.png", (16, 16, 3))
    results = {}
    for direction in ("a2b", "b2a"):
        out = tmp_path / direction
        result = cli(
            "translate", run, tmp_path / "in.png", "--direction", direction, "--backend", "torch", "--out", out
        )
        assert result.exit_code == 0 and f"cyclegan {direction}" in result.stderr
        results[direction] = _read(out / "in.png")
        expected = Translator.open(checkpoint_in(run, direction)).translate(image[None])[0]
        assert np.array_equal(results[direction], expected)
    assert not np.array_equal(results["a2b"], results["b2a"])
    result = cli(
        "translate", checkpoint_in(run, "b2a"), tmp_path / "in.png", "--direction", "a2b", "--out", tmp_path / "x"
    )
    assert result.exit_code == 2 and "is the b2a translator" in _one_error_line(result)


def test_torch_and_onnxruntime_agree_within_one_grey_level(cli, run: Path, tmp_path: Path) -> None:
    _save(tmp_path / "in" / "a.png", (16, 16, 3))
    _save(tmp_path / "in" / "b.png", (28, 20, 3))
    _save(tmp_path / "in" / "c.png", (9, 30))
    models = {"torch": run, "onnxruntime": run, "auto": run / "generator_a2b.fp16.onnx"}
    pictures = {}
    for backend, model in models.items():
        out = tmp_path / backend
        result = cli("translate", model, tmp_path / "in", "--keep-size", "--backend", backend, "--out", out)
        assert (
            result.exit_code == 0 and "backend: " + ("onnxruntime" if backend == "auto" else backend) in result.stderr
        )
        pictures[backend] = [_read(out / f"{name}.png").astype(int) for name in "abc"]
    for reference, fp32, fp16 in zip(*pictures.values(), strict=True):
        assert reference.shape == fp32.shape == fp16.shape
        assert np.abs(reference - fp32).max() <= 1 and np.abs(reference - fp16).max() <= 2


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_batch_size_does_not_change_the_files(cli, run: Path, tmp_path: Path, backend: str) -> None:
    for i, shape in enumerate([(16, 16, 3), (20, 24, 3), (16, 16, 3), (17, 15, 3), (16, 16, 3), (20, 24, 3)]):
        _save(tmp_path / "in" / f"{i}.png", shape)
    files = {}
    for batch in ("1", "4"):
        out = tmp_path / f"b{batch}"
        flags = ["--keep-size", "--batch-size", batch, "--backend", backend]
        assert cli("translate", run, tmp_path / "in", "--out", out, *flags).exit_code == 0
        files[batch] = {p.name: p.read_bytes() for p in out.glob("*.png")}  # beside them: the resume manifest
    assert len(files["1"]) == 6 and files["1"] == files["4"]


def test_an_unreadable_file_is_named_and_skipped_and_the_rest_written(cli, run: Path, tmp_path: Path) -> None:
    for name in ("a", "c"):
        _save(tmp_path / "in" / f"{name}.png", (16, 16, 3))
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    result = cli("translate", run, tmp_path / "in", "--out", out)
    assert result.exit_code == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "c.png"]
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("skipped ") and "b.png" in line for line in lines)
    assert lines[-1].startswith("error: 1 of 3 inputs could not be read") and lines[-1].endswith("b.png")
    only_bad = cli("translate", run, tmp_path / "in" / "b.png", "--out", tmp_path / "none")
    assert only_bad.exit_code == 1 and "nothing written" in only_bad.stderr
    assert not (tmp_path / "none").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_existing_output_is_refused_untouched_and_force_replaces(cli, run: Path, tmp_path: Path) -> None:
    _save(tmp_path / "in.png", (16, 16, 3))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = cli("translate", run, tmp_path / "in.png", "--out", out)
    assert result.exit_code == 2 and "already exists" in _one_error_line(result)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert cli("translate", run, tmp_path / "in.png", "--out", out, "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "in.png"]  # keep.txt replaced


def test_a_gan_and_a_translator_each_point_to_their_command(cli, run: Path, tmp_path: Path) -> None:
    gan = make_checkpoint(tmp_path / "gan")
    _save(tmp_path / "in.png", (16, 16, 3))
    line = _one_error_line(cli("translate", gan.parent, tmp_path / "in.png", "--out", tmp_path / "t"))
    assert "is a GAN generator" in line and "use gantool generate" in line
    for model in (run, run / "generator_a2b.onnx"):
        line = _one_error_line(cli("generate", model, "--out", tmp_path / "g.npz"))
        assert "translator" in line and "use gantool translate" in line
    assert not (tmp_path / "t").exists() and not (tmp_path / "g.npz").exists()


def test_python_api_load_gives_a_translator(run: Path) -> None:
    translator = gantool.load(run, direction="b2a")
    assert isinstance(translator, Translator) and translator.direction == "b2a" and translator.backend == "torch"
    images = RNG.integers(0, 256, (3, 12, 20, 4), dtype=np.uint8)  # RGBA, not the native size
    assert translator.translate(images, batch_size=2).shape == (3, 12, 20, 3)
    auto = gantool.load(run, batch_size=2)  # a2b has an export: auto measures it against torch at batch 2
    assert auto.backend in ("onnxruntime", "torch") and "measured now at batch 2: " in auto.reason
    runner = registry.create("torch", run, direction="b2a")
    batch = RNG.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    one_by_one = np.concatenate([runner.run(batch[i : i + 1]) for i in range(4)])
    assert np.array_equal(runner.run(batch), one_by_one)  # bit for bit: the batch never changes an image
    with pytest.raises(UsageError, match="multiples of 4"):
        runner.run(np.zeros((1, 3, 18, 16), np.float32))
    with pytest.raises(GantoolError, match="applies to CycleGAN"):
        gantool.load(make_checkpoint(run.parent / "gan").parent, direction="a2b")


def test_onnxruntime_reads_the_spec_and_names_from_the_file(run: Path) -> None:
    from onnx import onnx_ml_pb2

    from gantool.checkpoint import read_spec
    from gantool.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from gantool.runtime.onnx_file import MODEL_METADATA_PROPS

    assert onnx_ml_pb2.ModelProto.DESCRIPTOR.fields_by_name["metadata_props"].number == MODEL_METADATA_PROPS
    onnx_file = run / "generator_a2b.onnx"
    assert OnnxRuntimeBackend.peek_spec(onnx_file) == read_spec(checkpoint_in(run, "a2b"))  # no session needed
    runner = registry.create("onnxruntime", run)
    assert runner.run(np.zeros((2, 3, 24, 8), np.float32)).shape == (2, 3, 24, 8)  # any multiple of 4
    runner._fixed_size = (16, 16)  # as if exported for one size only
    with pytest.raises(GantoolError, match="exported for 16×16 images only"):
        runner.run(np.zeros((1, 3, 24, 8), np.float32))


def test_translating_from_onnx_imports_neither_torch_nor_onnx(run: Path, tmp_path: Path) -> None:
    model = tmp_path / "a2b.onnx"
    shutil.copy(run / "generator_a2b.onnx", model)
    _save(tmp_path / "in" / "a.png", (16, 16, 3))
    out = tmp_path / "out"
    code = (
        "import sys; from gantool.cli import app; "
        f"app(['translate', {str(model)!r}, {str(tmp_path / 'in')!r}, '--keep-size', '--out', {str(out)!r}], "
        "standalone_mode=False); "
        "heavy = [m for m in ('torch', 'onnx', 'sklearn', 'scipy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _read(out / "a.png").shape == (16, 16, 3)


def test_device_and_precision_on_the_cpu(cli, run: Path, tmp_path: Path) -> None:
    _save(tmp_path / "in" / "a.png", (16, 16, 3))
    outputs = {}
    for precision in ("fp32", "fp16"):
        out = tmp_path / precision
        flags = ["--backend", "onnxruntime", "--device", "cpu", "--precision", precision]
        result = cli("translate", run, tmp_path / "in", "--out", out, *flags)
        assert result.exit_code == 0, result.stderr
        assert f"onnxruntime on cpu, {precision}" in result.stderr
        outputs[precision] = _read(out / "a.png").astype(int)
    assert np.abs(outputs["fp16"] - outputs["fp32"]).max() <= 2  # the .fp16.onnx: FP16 inside, same pictures
    translator = gantool.load(run, device="cpu", precision="fp16")
    assert (translator.backend, translator.device, translator.precision) == ("onnxruntime", "cpu", "fp16")
    assert translator.runner.artifact is not None and translator.runner.artifact.name == "generator_a2b.fp16.onnx"


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (["--device", "gpu"], 2, "--device must be one of auto, cpu, cuda, got 'gpu'"),
        (["--precision", "fp8"], 2, "--precision must be one of fp32, fp16, bf16, int8, got 'fp8'"),
        (["--precision", "int8"], 2, "int8 needs the INT8 ONNX file of 'gantool export"),
        (["--backend", "torch", "--precision", "fp16"], 2, "fp16 on the torch backend needs --device cuda"),
        (["--backend", "tensorrt", "--device", "cpu"], 2, "the tensorrt backend runs on cuda, not cpu"),
    ],
)
def test_bad_device_and_precision_are_one_line(
    cli, run: Path, tmp_path: Path, flags: list[str], code: int, message: str
) -> None:
    _save(tmp_path / "in.png", (16, 16, 3))
    result = cli("translate", run, tmp_path / "in.png", "--out", tmp_path / "out", *flags)
    assert result.exit_code == code and message in _one_error_line(result)
    assert not (tmp_path / "out").exists()
