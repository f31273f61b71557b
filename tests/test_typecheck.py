"""mypy over the TensorRT and CUDA modules: the check CI can run on code that needs a GPU to execute.

TensorRT cannot be installed on CI machines, so its calls are checked against
the vendored TensorRT 10.13 stubs (tests/typings) instead of being run. The
stage folders install as ``gantool.export`` / ``gantool.runtime`` only through
setuptools' package-dir, which mypy does not read, so the check runs on a
temporary tree of symlinks laid out the way the package installs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAGES = {"export": "export", "runtime": "runtime", "benchmarks": "benchmarks", "training": "training"}
CHECKED = [
    "gantool/cuda.py",
    "gantool/trt_engine.py",
    "gantool/export/tensorrt_build.py",
    "gantool/export/tensorrt_export.py",
    "gantool/runtime/backends/tensorrt_backend.py",
]


def installed_layout(root: Path) -> Path:
    """``root/gantool``: the core's files, plus each stage folder under its installed name."""
    package = root / "gantool"
    package.mkdir()
    for source in (REPO / "gantool").glob("*.py"):
        (package / source.name).symlink_to(source)
    for name, folder in STAGES.items():
        (package / name).symlink_to(REPO / folder, target_is_directory=True)
    return package


def run_mypy(root: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *files]
    return subprocess.run(command, check=False, cwd=root, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One installed-layout tree for the module, so its mypy cache (numpy, typeshed) is shared by every run."""
    root = tmp_path_factory.mktemp("typecheck")
    installed_layout(root)
    return root


def test_tensorrt_and_cuda_modules_type_check(layout: Path) -> None:
    result = run_mypy(layout, CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "name, body, code",
    [
        (
            "unknown_method",
            "import tensorrt\n\n\ndef f(engine: tensorrt.ICudaEngine) -> int:\n    return engine.no_such_method()\n",
            "attr-defined",
        ),
        ("unknown_enum_member", "import tensorrt\n\nFLAG = tensorrt.BuilderFlag.NO_SUCH_FLAG\n", "attr-defined"),
        (
            "wrong_argument",
            "from gantool.trt_engine import plan_chunks\n\nCHUNKS = plan_chunks((1, 8), None)\n",
            "arg-type",
        ),
    ],
)
def test_the_type_check_has_teeth(layout: Path, name: str, body: str, code: str) -> None:
    """The same configuration fails on a call the stubs (or gantool's own hints) do not allow."""
    (layout / "gantool" / f"broken_{name}.py").write_text("from __future__ import annotations\n\n" + body)
    result = run_mypy(layout, [f"gantool/broken_{name}.py"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[{code}]" in result.stdout, result.stdout
