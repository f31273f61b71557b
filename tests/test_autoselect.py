"""``--backend auto`` by measurement: the cache that keeps the figures, what invalidates them, and what is said.

No timing is asserted: which backend is faster is the machine's business.
Where a test needs a known winner it writes made-up figures into the cache
file for this machine and model, and checks they are used without measuring
(``time_runs`` is counted). Everything runs with ``--device cpu``, so the
candidates (onnxruntime and torch on the CPU) are the same on any machine.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import make_checkpoint, make_translator_run
from gantool import timing
from gantool.cache import cache_dir
from gantool.errors import UsageError
from gantool.export.onnx_export import export_checkpoint
from gantool.runtime import autocache, autoselect, registry
from gantool.runtime.generator import Generator
from gantool.runtime.translator import Translator


@pytest.fixture(autouse=True)
def short_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few milliseconds per candidate: these tests check what is measured and kept, never the figures."""
    monkeypatch.setattr(autoselect, "WARMUP_S", 0.005)
    monkeypatch.setattr(autoselect, "MAX_S", 0.02)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("auto") / "run"
    export_checkpoint(make_checkpoint(run), run)
    return run


@pytest.fixture
def run(exported: Path, tmp_path: Path) -> Path:
    """A private copy of the exported tiny GAN (checkpoint, generator.onnx, generator.fp16.onnx): tests edit it."""
    return shutil.copytree(exported, tmp_path / "exported")


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The backends ``auto`` timed, in order: empty when the answer came from the cache."""
    calls: list[str] = []
    real = timing.time_runs

    def counting(run, inputs, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(run.__self__.name)
        return real(run, inputs, **kwargs)

    monkeypatch.setattr(timing, "time_runs", counting)
    return calls


def _cache_files(private_cache: Path) -> list[Path]:
    return sorted((private_cache / "auto").glob("*.json"))


def _record(private_cache: Path, figures: dict[str, float], batch: int = 64) -> Path:
    """Replace the measured figures in the one cache file with made-up ones (p50 ms per candidate label)."""
    [path] = _cache_files(private_cache)
    document = json.loads(path.read_text())
    document["batches"][str(batch)]["figures"] = {
        name: {"p50_ms": ms, "iqr_ms": ms / 10, "runs": 40} for name, ms in figures.items()
    }
    path.write_text(json.dumps(document))
    return path


BOTH = ["onnxruntime", "torch", "torch", "onnxruntime"]  # two rounds, the second in reverse order
MADE_UP = {"onnxruntime/cpu/fp32": 5.0, "torch/cpu/fp32": 1.25}  # torch "wins": the cache, not the machine, says so


def test_auto_takes_the_recorded_winner_without_measuring_again(
    run: Path, private_cache: Path, measured: list[str]
) -> None:
    first = registry.choose(run, device="cpu")
    assert measured == BOTH and "measured now at batch 64: " in first.reason
    assert first.backend is not None and first.backend.name == first.name  # the winner comes back loaded
    _record(private_cache, MADE_UP)
    measured.clear()
    choice = registry.choose(run, device="cpu")
    assert measured == [] and (choice.name, choice.device, choice.precision) == ("torch", "cpu", "fp32")
    assert choice.reason == (
        "torch on cpu (auto: measured at batch 64: 1.25 ms/batch vs onnxruntime 5 ms; cached; on cpu: --device cpu)"
    )
    generator = Generator.open(run, device="cpu")
    assert generator.backend == "torch" and generator.reason == choice.reason and measured == []
    assert "measured now at batch 8: " in registry.choose(run, device="cpu", batch_size=8).reason  # a new batch size
    assert measured == BOTH
    document = json.loads(_cache_files(private_cache)[0].read_text())
    assert sorted(document["batches"]) == ["64", "8"] and document["format"] == "gantool.auto"


def test_a_cache_for_another_machine_or_model_is_not_used(
    run: Path, private_cache: Path, measured: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.choose(run, device="cpu")
    path = _record(private_cache, MADE_UP)
    fingerprint = autocache.machine_fingerprint
    real = fingerprint()
    monkeypatch.setattr(autocache, "machine_fingerprint", lambda: {**real, "cpu": "another CPU"})
    measured.clear()
    assert "measured now" in registry.choose(run, device="cpu").reason and measured  # another file: another key
    assert len(_cache_files(private_cache)) == 2
    monkeypatch.setattr(autocache, "machine_fingerprint", fingerprint)
    document = json.loads(path.read_text())
    for field, foreign in (("machine", {**real, "cpu_count": 512}), ("model", "0" * 64)):
        path.write_text(json.dumps({**document, field: foreign}))  # the right name, someone else's figures
        measured.clear()
        assert "measured now" in registry.choose(run, device="cpu").reason and measured
        assert json.loads(path.read_text())[field] == document[field]  # rewritten for this machine and model


def test_changing_the_checkpoint_measures_again(run: Path, private_cache: Path, measured: list[str]) -> None:
    registry.choose(run, device="cpu")
    _record(private_cache, MADE_UP)
    make_checkpoint(run, seed=1)  # retrained...
    for onnx_file in run.glob("*.onnx"):
        os.utime(onnx_file)  # ...and the exports still count as fresh: the hash, not the clock, tells them apart
    measured.clear()
    assert "measured now" in registry.choose(run, device="cpu").reason and measured == BOTH
    assert len(_cache_files(private_cache)) == 2


def test_a_corrupt_cache_file_is_ignored_and_rewritten(run: Path, private_cache: Path, measured: list[str]) -> None:
    registry.choose(run, device="cpu")
    [path] = _cache_files(private_cache)
    for garbage in ("{not json", "[]", '{"format": "gantool.auto", "batches": {"64": 3}}'):
        path.write_text(garbage)
        measured.clear()
        assert "measured now" in registry.choose(run, device="cpu").reason and measured
        assert json.loads(path.read_text())["batches"]["64"]["figures"].keys() == set(MADE_UP)
    measured.clear()
    assert "cached" in registry.choose(run, device="cpu").reason and measured == []


def test_one_candidate_is_taken_without_measuring(
    run: Path, tiny_checkpoint: Path, private_cache: Path, measured: list[str]
) -> None:
    assert registry.choose(run / "generator.onnx").reason == "onnxruntime (auto: MODEL is an ONNX file)"
    assert registry.choose(tiny_checkpoint.parent).name == "torch"  # never exported: torch is the only one
    assert registry.choose(run, device="cpu", precision="fp16").name == "onnxruntime"  # torch is fp32 on the CPU
    assert registry.choose(run, "torch").reason == "torch (requested, on cpu)"  # a named backend: never measured
    assert measured == [] and _cache_files(private_cache) == []


def test_a_candidate_that_fails_to_load_is_dropped_and_named(
    run: Path, measured: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (run / "generator.onnx").write_bytes(b"\x00 not an onnx file")  # newer than the checkpoint: still a candidate
    loads: list[str] = []
    real_create = registry.create
    monkeypatch.setattr(registry, "create", lambda name, *args: loads.append(name) or real_create(name, *args))
    generator = Generator.open(run, device="cpu", batch_size=4)
    assert generator.backend == "torch" and measured == ["torch", "torch"]
    assert generator.reason.startswith("torch on cpu (auto: measured now at batch 4: ")
    assert "; onnxruntime on cpu failed: " in generator.reason and "generator.onnx" in generator.reason
    assert loads == ["onnxruntime", "torch"]  # the winner was reused, not loaded a second time
    assert generator.sample(3).shape == (3, 8, 8, 1)


def test_a_translator_is_measured_one_image_at_a_time_by_default(tmp_path: Path, measured: list[str]) -> None:
    run = make_translator_run(tmp_path / "translator")
    export_checkpoint(run / "generator_a2b.safetensors", run)
    assert "measured now at batch 1: " in Translator.open(run, device="cpu").reason
    assert "measured now at batch 3: " in Translator.open(run, device="cpu", batch_size=3).reason
    with pytest.raises(
        UsageError, match="translator.*use gantool translate"
    ):  # the wrong kind: refused before anything is timed
        Generator.open(run, device="cpu")
    assert measured == BOTH * 2
    with pytest.raises(UsageError, match="batch_size must be ≥ 1"):
        registry.choose(run, device="cpu", batch_size=0)


def test_the_cache_folder_follows_the_environment_and_is_never_required(
    run: Path, tmp_path: Path, measured: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTOOL_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir("auto") == tmp_path / "mine" / "auto" and (tmp_path / "mine" / "auto").is_dir()
    monkeypatch.delenv("GANTOOL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("auto") == tmp_path / "xdg" / "gantool" / "auto"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "gantool"
    (tmp_path / "a file").write_text("in the way")
    monkeypatch.setenv("GANTOOL_CACHE_DIR", str(tmp_path / "a file"))
    with pytest.raises(OSError):
        cache_dir("auto")
    for _ in range(2):  # no cache: auto still works, measuring every time
        assert "measured now" in registry.choose(run, device="cpu").reason
    assert measured == BOTH * 2
