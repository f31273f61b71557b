"""Interrupt, resume, full disk, no memory: ``generate`` and ``translate`` lose nothing and half-write nothing.

Interrupts are sent deterministically from inside the run (a writer that
signals after k files), and once for real to a ``gantool generate`` process.
"""

from __future__ import annotations

import errno
import itertools
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_checkpoint, make_translator_run
from gantool.artifacts import checkpoint_in
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import translate_pipeline, writers
from gantool.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from gantool.runtime.image_io import MANIFEST as TRANSLATE_MANIFEST
from gantool.runtime.writers import MANIFEST

SIGNAL_EXITS = [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"), (signal.SIGTERM, 143, "SIGTERM")]


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("resume") / "run"
    export_checkpoint(make_checkpoint(run), run)
    return run


@pytest.fixture(scope="module")
def translator_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both tiny translators, a2b also exported to ONNX."""
    run = make_translator_run(tmp_path_factory.mktemp("resume-cyclegan") / "run")
    export_checkpoint(checkpoint_in(run, "a2b"), run)
    return run


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (hidden ones too: a leftover temporary would show)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The error: the last stderr line, after at most the ``backend: ...`` line, with no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and not any(line.startswith("error: ") for line in lines[:-1])
    return lines[-1]


def _signal_after(count: int, signum: int):  # type: ignore[no-untyped-def]
    """A png_bytes that sends ``signum`` to this process while encoding file number ``count``."""
    encoded = itertools.count(1)
    real = writers.png_bytes

    def png_bytes(image: np.ndarray) -> bytes:
        if next(encoded) == count:
            os.kill(os.getpid(), signum)
        return real(image)

    return png_bytes


def _generate(cli, model: Path, out: Path, *flags: str):  # type: ignore[no-untyped-def]
    return cli("generate", model, "-n", "60", "--batch-size", "4", "--backend", "onnxruntime", "--out", out, *flags)


@pytest.mark.parametrize(("signum", "code", "name"), SIGNAL_EXITS, ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_generate_resumes_to_the_same_files(
    cli, exported_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: int, name: str
) -> None:
    assert _generate(cli, exported_run, tmp_path / "whole").exit_code == 0
    out = tmp_path / "samples"
    with monkeypatch.context() as patch:
        patch.setattr(writers, "png_bytes", _signal_after(5, signum))
        stopped = _generate(cli, exported_run, out)
    assert stopped.exit_code == code
    line = _error_line(stopped)
    assert line.startswith(f"error: stopped by {name} after writing ") and " --resume" in line
    partial = _files(out)
    assert MANIFEST in partial and 5 <= len(partial) - 1 < 60  # stopped early, after the files in flight
    assert all(name.endswith(".png") for name in partial if name != MANIFEST)  # no temporary left
    (out / ".000059.png.abcd_123.tmp").write_bytes(b"half a PNG")  # what a SIGKILLed run leaves

    again = shlex.split(line.split("resume with: ")[1])  # the exact command printed, pasted back
    assert again[:2] == ["gantool", "generate"]
    resumed = cli(*again[1:])
    assert resumed.exit_code == 0, resumed.stderr
    assert f"wrote {60 - (len(partial) - 1)} images" in resumed.stderr
    assert f"skipped {len(partial) - 1} already complete, 0 failed" in resumed.stderr
    assert _files(out) == _files(tmp_path / "whole")  # byte for byte, temporary gone


def test_a_real_sigint_stops_gantool_generate_cleanly(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    slow_writer = (  # the real CLI in a real process, its PNG encoder slowed so the signal lands mid-run
        "import sys, time; from gantool.runtime import writers; real = writers.png_bytes; "
        "writers.png_bytes = lambda image: (time.sleep(0.01), real(image))[1]; "
        "from gantool.cli import main; sys.argv = ['gantool'] + sys.argv[1:]; main()"
    )
    args = ["generate", str(exported_run), "-n", "600", "-b", "8", "--backend", "onnxruntime", "--out", str(out)]
    process = subprocess.Popen([sys.executable, "-c", slow_writer, *args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(out.glob("*.png"))) < 10 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error: stopped by Ctrl-C")
    written = sorted(out.glob("*.png"))
    assert 10 <= len(written) < 600 and not list(out.glob(".*.tmp"))
    for png in written:  # every file there is whole
        Image.open(png).load()
    resumed = cli(*args, "--resume")
    assert resumed.exit_code == 0 and f"skipped {len(written)} already complete" in resumed.stderr
    assert len(list(out.glob("*.png"))) == 600


def test_resume_refuses_a_different_seed_model_or_count(cli, exported_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "samples"
    assert _generate(cli, exported_run, out, "--seed", "1").exit_code == 0
    before = _files(out)
    other = tmp_path / "other"
    export_checkpoint(make_checkpoint(other, seed=5), other)
    for model, flags, words in [
        (exported_run, ["--seed", "2"], "written with seed 1, not 2"),
        (other, ["--seed", "1"], "written with model"),
        (exported_run, ["--seed", "1", "--precision", "fp16"], "generator.fp16.onnx"),
    ]:
        refused = _generate(cli, model, out, "--resume", *flags)
        assert refused.exit_code == 2 and words in _error_line(refused)
    refused = cli("generate", exported_run, "-n", "61", "--seed", "1", "--out", out, "--resume")
    assert refused.exit_code == 2 and "written with n 60, not 61" in _error_line(refused)
    assert _files(out) == before
    assert "skipped 60 already complete" in _generate(cli, exported_run, out, "--seed", "1", "--resume").stderr


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--out", "x.npz", "--resume"], "--resume needs a folder --out"),
        (["--out", "grid.png", "--resume"], "--resume needs a folder --out"),
        (["--out", "samples", "--resume", "--force"], "--resume and --force exclude each other"),
    ],
)
def test_resume_with_a_single_file_or_force_is_a_usage_error(
    cli, exported_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("generate", exported_run, *flags)
    assert result.exit_code == 2 and words in _error_line(result)
    assert list(tmp_path.iterdir()) == []


def _photos(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def _translate(cli, model: Path, *args: str | Path):  # type: ignore[no-untyped-def]
    return cli("translate", model, *args, "--backend", "onnxruntime")


def test_translate_resume_skips_outputs_already_there(cli, translator_run: Path, tmp_path: Path) -> None:
    _photos(tmp_path / "in", 6)
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert _translate(cli, translator_run, tmp_path / "in", "--out", whole).exit_code == 0
    assert _translate(cli, translator_run, tmp_path / "in", "--out", out).exit_code == 0
    for name in ("1.png", "4.png"):
        (out / name).unlink()
    (out / "0.png").write_bytes(b"already complete: kept as is")
    (out / ".1.png.x9y8z7w6.tmp").write_bytes(b"left by a killed run")
    resumed = _translate(cli, translator_run, tmp_path / "in", "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "wrote 2 images" in resumed.stderr and "(skipped 4 already complete, 0 failed)" in resumed.stderr
    assert _files(out) == {**_files(whole), "0.png": b"already complete: kept as is"}


@pytest.mark.parametrize(("signum", "code", "name"), SIGNAL_EXITS, ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_translate_resumes_to_the_same_files(
    cli, translator_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: int, name: str
) -> None:
    _photos(tmp_path / "in", 24)
    assert _translate(cli, translator_run, tmp_path / "in", "--out", tmp_path / "whole").exit_code == 0
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        encoded, real = itertools.count(1), translate_pipeline.write_png
        patch.setattr(
            translate_pipeline,
            "write_png",
            lambda path, pixels: (next(encoded) == 3 and os.kill(os.getpid(), signum), real(path, pixels)),
        )
        stopped = _translate(cli, translator_run, tmp_path / "in", "--batch-size", "2", "--out", out)
    assert stopped.exit_code == code
    line = _error_line(stopped)
    assert line.startswith(f"error: stopped by {name}: wrote ") and line.endswith(
        "--backend onnxruntime --device auto --batch-size 2 --resume"
    )
    partial = _files(out)
    assert TRANSLATE_MANIFEST in partial and 3 <= len(partial) - 1 < 24
    assert all(name.endswith(".png") for name in partial if name != TRANSLATE_MANIFEST)  # no temporary left
    resumed = _translate(cli, translator_run, tmp_path / "in", "--batch-size", "2", "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert _files(out) == _files(tmp_path / "whole")


def _disk_full_after(count: int):  # type: ignore[no-untyped-def]
    """A Path.write_bytes that writes half of file number ``count`` (and later ones), then fails with ENOSPC."""
    calls = itertools.count(1)
    real = Path.write_bytes

    def write_bytes(self: Path, data: bytes) -> int:
        if next(calls) >= count:
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    return write_bytes


@pytest.mark.parametrize(("out_name", "failing_write"), [("samples", 8), ("grid.png", 1)])
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(
    cli, exported_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out_name: str, failing_write: int
) -> None:
    out = tmp_path / out_name
    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_bytes", _disk_full_after(failing_write))
        result = _generate(cli, exported_run, out)
    assert result.exit_code == 1
    line = _error_line(result)
    assert line.startswith(f"error: disk full: could not write {out}") and "(No space left on device)" in line
    if out_name == "grid.png":  # one file, written whole or not at all
        assert list(tmp_path.iterdir()) == []
        return
    assert line.endswith("--resume") and "free some space, then: gantool generate" in line
    kept = _files(out)
    assert all(name.endswith(".png") for name in kept if name != MANIFEST) and len(kept) <= 8
    for name in kept:
        if name != MANIFEST:
            Image.open(out / name).load()  # the complete ones are whole
    assert _generate(cli, exported_run, out, "--resume").exit_code == 0
    assert len(_files(out)) == 61


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:81] DefaultCPUAllocator: not enough memory: you tried to allocate"
        ),
        RuntimeError(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv "
            "node. BFCArena::AllocateRawInternal Failed to allocate memory for requested buffer of size 1"
        ),
    ],
    ids=["MemoryError", "torch-cpu", "onnxruntime"],
)
def test_a_batch_too_big_for_memory_suggests_a_smaller_one(
    cli, exported_run: Path, translator_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def run(self: OnnxRuntimeBackend, batch: np.ndarray) -> np.ndarray:
        raise error

    monkeypatch.setattr(OnnxRuntimeBackend, "run", run)
    result = _generate(cli, exported_run, tmp_path / "samples", "--batch-size", "64")
    assert result.exit_code == 1
    assert _error_line(result) == "error: a batch of 64 images does not fit in memory: try --batch-size 32"
    assert not (tmp_path / "samples").exists()
    _photos(tmp_path / "in", 1)
    flags = ["--batch-size", "1", "--backend", "onnxruntime", "--out", tmp_path / "out"]
    result = cli("translate", translator_run, tmp_path / "in", *flags)
    assert result.exit_code == 1 and "even one image at a time does not fit in memory" in _error_line(result)
    assert not (tmp_path / "out").exists()
