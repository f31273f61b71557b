"""gantool installs as one package: a built wheel holds only gantool.*, and its CLI runs from anywhere."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a wheel from a copy of the source tree (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("src") / "gantool"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "runs"),
    )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("gantool-*.whl")
    return built


def test_wheel_installs_every_stage_under_the_gantool_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("gantool-")}
    assert top_level == {"gantool"}
    for module in ("cli", "training/cli", "export/cli", "runtime/cli", "runtime/registry", "benchmarks/cli"):
        assert f"gantool/{module}.py" in names
    assert not any(name.startswith("gantool/benchmarks/scripts") for name in names)


def test_installed_wheel_runs_the_cli_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Reuse the dependencies of the environment running the tests (torch & co.), which may itself be a venv, so
    # system_site_packages would miss them: a .pth names its site-packages folders. Folders named in a .pth have
    # their own .pth files ignored, so the checkout's editable install stays out of the new environment.
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    own = subprocess.run([python, "-c", purelib], capture_output=True, text=True, check=True)
    (Path(own.stdout.strip()) / "test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q", wheel], check=True)
    found = subprocess.run(
        [python, "-c", "import gantool.runtime.registry as r; print(r.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in found.stdout  # the wheel's copy, not the editable checkout
    shown = subprocess.run(
        [env_dir / "bin" / "gantool", "--help"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0
    for command in ("train", "export", "generate", "bench"):
        assert command in shown.stdout
