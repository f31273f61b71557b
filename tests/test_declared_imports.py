"""What gantool imports is what its pyproject.toml declares, and none of it is another package's private module.

The rules, for every module the wheel installs (the packages of ``[tool.setuptools]``; benchmarks/scripts/ is
not one of them: standalone comparison scripts):

* the standard library and gantool itself may be imported anywhere;
* any other top-level name must come from a distribution pyproject.toml names itself, in ``dependencies`` or in
  a user-facing extra: a dependency of a dependency is not enough (typer up to 0.25 brought click, typer 0.26 and
  later do not). Import names map to distributions as ``importlib.metadata.packages_distributions()`` maps them,
  with one honest widening: a declared *metapackage*, a distribution that installs no module at all, provides
  what the distributions it requires install (``cuda-python`` is nothing but ``cuda-bindings``, ``cuda-core``...);
* an import that runs when its module is imported (module level, not under ``try: ... except ImportError``)
  must be a base dependency, so the base install imports every module; an extra's package (matplotlib, cuda,
  tensorrt) is imported inside the function that needs it, or guarded;
* imports under ``if TYPE_CHECKING:`` never run: they belong to mypy's environment and are not checked;
* no import names another package's private module (``typer._click``, ``torch._dynamo``), and no code reaches
  one through an attribute (``torch._dynamo.exc``) or ``getattr(torch, "_C")``.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest
from import_rules import (
    NOT_INSTALLED_HERE,
    REPO,
    canonical,
    declared_installs,
    distributions_of,
    importable,
    imported_modules,
    package_modules,
    parse,
    private_access,
    read_pyproject,
    undeclared_imports,
    user_facing,
)


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return read_pyproject()


@pytest.fixture(scope="module")
def sources(pyproject: dict[str, Any]) -> dict[str, ast.Module]:
    """Each installed module of the package, parsed: its path relative to the checkout -> its AST."""
    files = package_modules(pyproject["tool"]["setuptools"])
    assert any(path.name == "cli.py" and path.parent.name == "gantool" for path in files)
    assert not any("scripts" in path.relative_to(REPO).parts for path in files)
    return {str(path.relative_to(REPO)): parse(path) for path in files}


def test_every_import_is_declared_and_module_level_ones_by_the_base_install(
    pyproject: dict[str, Any], sources: dict[str, ast.Module]
) -> None:
    installs = declared_installs(pyproject["project"])
    found = [imp for where, tree in sources.items() for imp in imported_modules(tree, where)]
    assert {"torch", "typer", "matplotlib", "cuda", "tensorrt"} <= {imp.top for imp in found}  # the scan sees them
    problems = undeclared_imports(found, installs)
    assert not problems, "\n".join(problems)


def test_no_module_touches_another_packages_private_modules(sources: dict[str, ast.Module]) -> None:
    problems = [problem for where, tree in sources.items() for problem in private_access(tree, where)]
    assert not problems, "\n".join(problems)


def test_a_metapackage_provides_what_it_requires_and_nothing_else_does(pyproject: dict[str, Any]) -> None:
    installs = declared_installs(pyproject["project"])
    assert {"tensorrt", "onnxruntime-gpu", "cuda-python"} <= installs["trt"]  # gantool[gpu] expanded
    base = importable(installs["base"])
    assert {"torch", "typer", "PIL", "sklearn", "numpy"} <= base
    assert "click" not in base  # typer < 0.26 requires click, but typer has modules of its own: no metapackage
    if "cuda" not in distributions_of():
        pytest.skip("cuda-python (the test extra) is not installed here")
    assert "cuda" in importable({"cuda-python"}) and "cuda" not in base  # cuda-python installs no module itself


def test_every_name_not_installed_here_maps_to_a_declared_distribution(pyproject: dict[str, Any]) -> None:
    declared = user_facing(declared_installs(pyproject["project"]))
    for name, (dist, reason) in NOT_INSTALLED_HERE.items():
        assert canonical(dist) in declared and reason, name


@pytest.mark.parametrize(
    "source, problem",
    [
        ("import click\n", "click"),
        ("import pygments\n", "comes from pygments"),  # rich requires it, but only rich is declared
        ("import matplotlib\n", "only in an extra, yet imported at module level"),
        ("import gantool_no_such_package\n", "not installed here"),
    ],
)
def test_the_import_check_catches(pyproject: dict[str, Any], source: str, problem: str) -> None:
    found = imported_modules(ast.parse(source), "example.py")
    problems = undeclared_imports(found, declared_installs(pyproject["project"]))
    assert len(problems) == 1 and problem in problems[0], problems  # click: undeclared, or not even installed


def test_the_import_check_accepts_lazy_guarded_and_type_checking_imports(pyproject: dict[str, Any]) -> None:
    source = """
from typing import TYPE_CHECKING

import numpy as np

from . import spec

if TYPE_CHECKING:
    from typing_extensions import Self

try:
    import matplotlib
except ImportError:
    matplotlib = None

def plot():
    import matplotlib.figure
    from cuda.bindings import runtime
"""
    found = imported_modules(ast.parse(source), "example.py")
    assert [(imp.module, imp.eager) for imp in found] == [
        ("numpy", True),
        ("matplotlib", False),
        ("matplotlib.figure", False),
        ("cuda.bindings", False),
    ]
    assert undeclared_imports(found, declared_installs(pyproject["project"])) == []


@pytest.mark.parametrize(
    "source, problem",
    [
        ("from typer._click import echo\n", "imports typer._click.echo: typer._click is private"),  # typer 0.26+
        ("from typer._click.exceptions import Abort\n", "typer._click is private"),
        ("from torch import _C\n", "imports torch._C: torch._C is private"),
        ("import torch\ntry:\n    pass\nexcept torch._dynamo.exc.TorchDynamoException:\n    pass\n", "torch._dynamo"),
        ("import numpy as np\nnp._core.multiarray\n", "reaches np._core: numpy._core is private"),
        ("import typer as t\nt._click.echo\n", "reaches t._click: typer._click is private"),
        ("from torch import compiler\ncompiler._cache\n", "torch.compiler._cache is private"),
        ('import torch\ngetattr(torch, "_C")\n', "reaches torch._C through getattr: torch._C is private"),
    ],
)
def test_the_private_check_catches(source: str, problem: str) -> None:
    problems = private_access(ast.parse(source), "example.py")
    assert any(problem in line for line in problems), problems


def test_the_private_check_accepts_public_names_and_the_standard_librarys() -> None:
    source = """
import os
import typer
from typer.core import TyperGroup

os._exit(0)
typer.Abort, typer.__version__
self._torch = None
"""
    assert private_access(ast.parse(source), "example.py") == []
