"""The main job as a user runs it, in separate processes: train → export → generate, then the Python API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gantool


def gantool_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m gantool ARGS...`` in a fresh process, as a user's shell would run it."""
    return subprocess.run(
        [sys.executable, "-m", "gantool", *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MLP trained for one epoch on the bundled digits, then exported."""
    run = tmp_path_factory.mktemp("e2e") / "digits"
    trained = gantool_cli("train", "gan", "--epochs", "1", "--hidden", "32,64", "--latent-dim", "16", "--out", run)
    assert trained.returncode == 0, trained.stderr
    exported = gantool_cli("export", run)
    assert exported.returncode == 0, exported.stderr
    assert "generator.onnx" in exported.stdout and "generator.fp16.onnx" in exported.stdout
    return run


def test_generate_from_the_exported_onnx_writes_numbered_pngs(exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    result = gantool_cli("generate", exported_run / "generator.onnx", "-n", "20", "--batch-size", "8", "--out", out)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.glob("*.png"))  # beside them: the resume manifest
    assert names == [f"{i:06d}.png" for i in range(20)]
    with Image.open(out / "000007.png") as image:
        assert image.size == (28, 28) and image.mode == "L"


def test_same_seed_gives_the_same_images_on_every_backend_and_batch_size(exported_run: Path, tmp_path: Path) -> None:
    arrays = {}
    for backend, batch in (("torch", "1"), ("torch", "16"), ("onnxruntime", "5")):
        out = tmp_path / f"{backend}-{batch}.npz"
        result = gantool_cli(
            "generate", exported_run, "-n", "16", "--seed", "3", "-b", batch, "--backend", backend, "--out", out
        )
        assert result.returncode == 0, result.stderr
        arrays[backend, batch] = np.load(out)["images"]
    assert np.array_equal(arrays["torch", "1"], arrays["torch", "16"])
    difference = np.abs(arrays["torch", "1"].astype(int) - arrays["onnxruntime", "5"].astype(int))
    assert difference.max() <= 1  # FP32 on two engines: at most one grey level apart


def test_python_api_matches_the_cli(exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.npz"
    assert (
        gantool_cli("generate", exported_run, "-n", "6", "--seed", "9", "--backend", "torch", "--out", out).returncode
        == 0
    )
    images = gantool.load(exported_run, backend="torch").sample(6, seed=9)
    assert images.dtype == np.uint8 and images.shape == (6, 28, 28, 1)
    assert np.array_equal(images, np.load(out)["images"])

    import torch

    module = gantool.torch_module(exported_run)
    with torch.inference_mode():
        assert module(torch.zeros(2, 16)).shape == (2, 1, 28, 28)


def test_bad_input_gets_one_line_and_touches_nothing(exported_run: Path, tmp_path: Path) -> None:
    existing = tmp_path / "keep.npz"
    existing.write_bytes(b"precious")
    refused = gantool_cli("generate", exported_run, "-n", "4", "--out", existing)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "--force" in refused.stderr
    assert existing.read_bytes() == b"precious"

    missing = gantool_cli("export", tmp_path / "nowhere")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("error: ") and missing.stderr.strip().count("\n") == 0


def test_cyclegan_round_trip_train_export_translate_on_both_backends(tmp_path: Path) -> None:
    """A tiny CycleGAN on an unpaired folder, both directions exported, then a folder translated twice."""
    data = tmp_path / "zebras"
    rng = np.random.default_rng(0)
    for domain in ("trainA", "trainB"):
        (data / domain).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 255, (30, 26, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(data / domain / f"{i}.png")
    run = tmp_path / "run"
    tiny = ["--size", "24", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--epochs", "1", "--epochs-decay", "0"]
    trained = gantool_cli("train", "cyclegan", "--dataset", data, "--batch-size", "2", *tiny, "--out", run)
    assert trained.returncode == 0, trained.stderr
    exported = gantool_cli("export", run)
    assert exported.returncode == 0, exported.stderr
    for direction in ("a2b", "b2a"):
        assert (run / f"generator_{direction}.onnx").is_file() and (run / f"generator_{direction}.fp16.onnx").is_file()

    outputs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        result = gantool_cli(
            "translate", run, data / "trainA", "--direction", "b2a", "--backend", backend, "--out", out
        )
        assert result.returncode == 0, result.stderr
        outputs[backend] = {p.name: np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))}  # and a manifest
    assert sorted(outputs["torch"]) == [f"{i}.png" for i in range(4)]
    for name, image in outputs["torch"].items():
        assert image.shape == (24, 24, 3)  # the model's native size, as CycleGAN's test script does
        assert np.abs(image.astype(int) - outputs["onnxruntime"][name].astype(int)).max() <= 1
