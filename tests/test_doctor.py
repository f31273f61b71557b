"""``gantool doctor``: one row per backend on this very machine, a header for the machine, JSON for scripts.

Nothing is simulated but the failures: cuda-python is installed here and
reports no driver, so the CUDA column and the notes are what a CPU-only user sees.
"""

from __future__ import annotations

import json

import onnxruntime
import pytest
import torch

from gantool import __version__
from gantool.runtime import gpu, registry
from gantool.runtime.backends import onnxruntime_backend
from gantool.runtime.backends.torch_backend import TorchBackend

HAS_GPU = gpu.scan().usable


def test_the_table_has_a_machine_line_and_one_row_per_backend(cli) -> None:
    result = cli("doctor")
    assert result.exit_code == 0, result.stderr
    machine, features, header, *rows = result.stdout.splitlines()
    assert machine.startswith("machine: ") and f"gantool {__version__}" in machine and " cores; Python 3." in machine
    if not HAS_GPU:
        assert "CUDA driver: none (no usable CUDA driver" in machine
    assert features.startswith("CPU features: VNNI ") and ", BF16 " in features and ", AMX " in features
    assert header.split() == ["backend", "installed", "version", "devices", "note"]
    assert [row.split()[0] for row in rows] == registry.names()
    cells = {row.split()[0]: row.split()[1:4] for row in rows}
    assert cells["torch"] == ["yes", torch.__version__, "cpu"]
    assert cells["onnxruntime"] == ["yes", onnxruntime.__version__, "cpu"]


def test_json_has_the_machine_and_one_row_per_backend_for_scripts(cli) -> None:
    result = cli("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["machine"]) == {"cpu", "cores", "python", "gantool", "cuda_driver", "cpu_features"}
    assert set(report["machine"]["cpu_features"]) == {"vnni", "bf16", "amx"}
    if not HAS_GPU:
        assert report["machine"]["cuda_driver"].startswith("none (")
    rows = report["backends"]
    assert [row["backend"] for row in rows] == registry.names()
    assert all(set(row) == {"backend", "installed", "version", "devices", "note"} for row in rows)
    by_name = {row["backend"]: row for row in rows}
    assert by_name["onnxruntime"]["installed"] is True and by_name["onnxruntime"]["devices"][0] == "cpu"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert 'onnxruntime is the CPU build: for CUDA, pip install "gantool[gpu]"' in by_name["onnxruntime"]["note"]
        assert by_name["onnxruntime-trt"]["installed"] is False and "gantool[trt]" in by_name["onnxruntime-trt"]["note"]
    if not HAS_GPU:
        assert all(not any(d.startswith("cuda") for d in row["devices"]) for row in rows)


def test_a_probe_that_raises_is_a_row_not_a_crash(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cls: type) -> None:
        raise OSError("libcudart.so.13: cannot open shared object file\nand a second line")

    monkeypatch.setattr(TorchBackend, "probe", classmethod(broken))
    result = cli("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["backends"][0]
    assert row == {
        "backend": "torch",
        "installed": False,
        "version": "",
        "devices": [],
        "note": "OSError: libcudart.so.13: cannot open shared object file",
    }


def test_a_missing_backend_and_a_broken_onnxruntime_install_say_how_to_fix_them(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "missing", "conftest:NotInstalledBackend")
    monkeypatch.setattr(onnxruntime_backend, "installed_distributions", lambda: {"onnxruntime", "onnxruntime-gpu"})
    result = cli("doctor")
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert lines["missing"].split()[1] == "no" and "pip install gantool-no-such-engine" in lines["missing"]
    assert "they overwrite each other; pip uninstall -y onnxruntime onnxruntime-gpu" in lines["onnxruntime"]
