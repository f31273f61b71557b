"""The machinery behind test_declared_imports.py: what pyproject.toml declares, what the sources import.

Import names map to distributions as ``importlib.metadata.packages_distributions()``
maps them; the sources are read with ``ast``, never imported. The rules themselves
are stated in test_declared_imports.py.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = "gantool"

# Extras that give a user no feature, so they cannot declare what the package imports.
DEV_EXTRAS = {"test": "the test suite's tools (pytest, mypy, build, hypothesis)"}

# Import names this machine may not have installed, so packages_distributions() cannot map them: each maps to
# the declared distribution that provides it (the test checks that it is declared), and why it is missing here.
NOT_INSTALLED_HERE = {
    "tensorrt": ("tensorrt", "NVIDIA's TensorRT wheels (the trt extra) need CUDA libraries; tests fake them"),
    "pytriton": ("nvidia-pytriton", "the serve extra pins numpy < 2: CI runs its tests in a venv of their own"),
}

# Private names of other packages the sources may still use ("torch._C"), each with the reason no public API
# does the job. Empty: keep it so.
PRIVATE_ALLOWED: dict[str, str] = {}


# ---- what pyproject.toml declares ----


def canonical(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503): Pillow is pillow, scikit_learn is scikit-learn."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(text: str) -> tuple[str, set[str]]:
    """("cuda-python", set()) from "cuda-python>=12.6"; ("gantool", {"gpu"}) from "gantool[gpu]"."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", text)
    assert found, f"not a requirement: {text!r}"
    return canonical(found[1]), {extra.strip() for extra in (found[2] or "").split(",") if extra.strip()}


def read_pyproject() -> dict[str, Any]:
    if sys.version_info < (3, 11):
        pytest.skip("reading pyproject.toml needs tomllib (Python 3.11+); tomli is not a declared dependency")
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def declared_installs(project: dict[str, Any]) -> dict[str, set[str]]:
    """The distributions each install names directly: "base", and each extra with its gantool[...] self-references."""
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})

    def named_by(extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
        names: set[str] = set()
        for text in extras[extra]:
            name, wanted = requirement(text)
            if name == canonical(project["name"]):  # "gantool[gpu]": that extra's distributions
                for other in wanted - seen:
                    names |= named_by(other, seen | {extra})
            else:
                names.add(name)
        return names

    installs = {"base": {requirement(text)[0] for text in project.get("dependencies", [])}}
    installs.update({extra: named_by(extra) for extra in extras})
    return installs


# ---- what the installed distributions provide ----


@cache
def distributions_of() -> dict[str, set[str]]:
    """Top-level import name -> the (canonical) distributions installing it, from packages_distributions()."""
    return {name: {canonical(dist) for dist in dists} for name, dists in packages_distributions().items()}


@cache
def modules_of() -> dict[str, set[str]]:
    """Distribution -> the top-level import names it installs: packages_distributions() inverted."""
    modules: dict[str, set[str]] = defaultdict(set)
    for name, dists in distributions_of().items():
        for dist in dists:
            modules[dist].add(name)
    return modules


def installed_requirements(dist: str) -> set[str]:
    """The distributions DIST requires in any install (not only for one of its extras); none if not installed."""
    try:
        texts = requires(dist) or []
    except PackageNotFoundError:
        return set()
    return {requirement(text)[0] for text in texts if "extra" not in text.partition(";")[2]}


def provided_by(dist: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The top-level names that declaring DIST makes importable: its own modules; a metapackage's requirements'.

    A metapackage installs no module of its own (cuda-python 12.6+ requires cuda-bindings, cuda-core,
    cuda-pathfinder; tensorrt requires tensorrt-cuXX, itself a metapackage): depending on it is depending on
    what it requires. A distribution with modules of its own (typer, which once required click) provides only those.
    """
    if modules_of().get(dist):
        return modules_of()[dist]
    names: set[str] = set()
    for required in installed_requirements(dist) - seen:
        names |= provided_by(required, seen | {dist})
    return names


def user_facing(installs: dict[str, set[str]]) -> set[str]:
    """The distributions of the base install and of every extra a user installs for a feature."""
    return set().union(*(dists for name, dists in installs.items() if name not in DEV_EXTRAS))


def importable(dists: set[str]) -> set[str]:
    """Every top-level name an install of DISTS provides directly, or through metapackages."""
    names = {name for name, (dist, _) in NOT_INSTALLED_HERE.items() if canonical(dist) in dists}
    for dist in dists:
        names |= provided_by(dist)
    return names


# ---- what the package's modules import ----


@dataclass(frozen=True)
class Import:
    """One imported module, in one file: eager when it runs as its module is imported, unguarded."""

    where: str
    module: str
    eager: bool

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def package_modules(tool: dict[str, Any]) -> list[Path]:
    """Every .py file the wheel installs, from [tool.setuptools] packages and package-dir."""
    package_dir: dict[str, str] = tool.get("package-dir", {})
    files: list[Path] = []
    for package in tool["packages"]:
        prefixes = [p for p in package_dir if p in ("", package) or package.startswith(p + ".")]
        prefix = max(prefixes, key=len, default="")
        rest = [part for part in package[len(prefix) :].split(".") if part]
        folder = REPO.joinpath(package_dir.get(prefix, ""), *rest)
        files += sorted(folder.glob("*.py"))
    return files


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def catches_import_error(node: Any) -> bool:  # an ast.Try or, from Python 3.11, an ast.TryStar
    names = {"ImportError", "ModuleNotFoundError"}
    for handler in node.handlers:
        caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(name, ast.Name) and name.id in names for name in caught):
            return True
    return False


TRY_NODES = tuple(getattr(ast, name) for name in ("Try", "TryStar") if hasattr(ast, name))
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def import_statements(node: ast.AST, eager: bool = True) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement under NODE that can run, with whether it runs unguarded at import time."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, eager
        return
    children: list[ast.AST] = list(ast.iter_child_nodes(node))
    if isinstance(node, FUNCTION_NODES):
        eager = False
    elif isinstance(node, ast.If) and is_type_checking(node.test):
        children = list(node.orelse)  # the body is for mypy only
    elif isinstance(node, TRY_NODES) and catches_import_error(node):
        guarded: Any = node
        for child in guarded.body:
            yield from import_statements(child, eager=False)
        children = [*guarded.handlers, *guarded.orelse, *guarded.finalbody]
    for child in children:
        yield from import_statements(child, eager)


def imported_modules(tree: ast.Module, where: str) -> list[Import]:
    """The modules of other packages TREE imports (the standard library's and gantool's left out)."""
    found = []
    for node, eager in import_statements(tree):
        if isinstance(node, ast.ImportFrom):
            modules = [node.module] if node.level == 0 and node.module else []  # relative imports are ours
        else:
            modules = [alias.name for alias in node.names]
        for module in modules:
            top = module.split(".")[0]
            if top != OURS and top not in sys.stdlib_module_names:
                found.append(Import(f"{where}:{node.lineno}", module, eager))
    return found


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


# ---- the checks, each a list of problems: empty when the rules hold ----


def undeclared_imports(found: list[Import], installs: dict[str, set[str]]) -> list[str]:
    """Imports no declared install provides, and eager imports the base install does not provide."""
    declared, base = importable(user_facing(installs)), importable(installs["base"])
    problems = []
    for imp in found:
        if imp.top not in distributions_of() and imp.top not in NOT_INSTALLED_HERE:
            problems.append(f"{imp.where}: {imp.module} is not installed here and not in NOT_INSTALLED_HERE")
        elif imp.top not in declared:
            owners = ", ".join(sorted(distributions_of().get(imp.top, ())))
            problems.append(f"{imp.where}: {imp.module} comes from {owners}, which pyproject.toml does not declare")
        elif imp.eager and imp.top not in base:
            problems.append(
                f"{imp.where}: {imp.module} is only in an extra, yet imported at module level: import it in the "
                "function that needs it, or under try/except ImportError, so the base install imports the module"
            )
    return problems


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def attribute_chain(node: ast.Attribute) -> list[str] | None:
    """["torch", "_dynamo", "exc"] for torch._dynamo.exc; None when the chain does not start at a plain name."""
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    return [value.id, *reversed(parts)] if isinstance(value, ast.Name) else None


def up_to_private(parts: list[str]) -> str | None:
    """The name up to its first private part: torch._dynamo for ["torch", "_dynamo", "exc"]; None if it has none."""
    for at, part in enumerate(parts[1:], start=1):
        if private(part):
            return ".".join(parts[: at + 1])
    return None


def private_access(tree: ast.Module, where: str) -> list[str]:
    """Imports of other packages' private modules, and private attributes reached from an imported third party."""
    problems: dict[str, str] = {}  # the private name ("torch._dynamo") -> where and how it is first reached
    third_party: dict[str, list[str]] = {}  # a name an import binds -> what it is: np -> ["numpy"]
    for node, _ in import_statements(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                continue  # relative: ours
            imported = [([*node.module.split("."), alias.name], alias.asname or alias.name) for alias in node.names]
        else:  # import torch.nn binds torch; import torch.nn as tnn binds tnn, torch.nn
            imported = [(alias.name.split("."), alias.asname) for alias in node.names]
        for parts, bound in imported:
            if parts[0] == OURS:
                continue
            name = up_to_private(parts)
            if name:
                problems.setdefault(name, f"{where}:{node.lineno}: imports {'.'.join(parts)}: {name} is private")
            if parts[0] not in sys.stdlib_module_names:  # the standard library documents some _names: os._exit
                third_party[bound or parts[0]] = parts if bound else parts[:1]
    for node in ast.walk(tree):
        chain: list[str] | None = None
        how = ""
        if isinstance(node, ast.Attribute) and private(node.attr):
            chain = attribute_chain(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            target, attr = (node.args + [None, None])[:2]
            if isinstance(target, ast.Name) and isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                chain, how = [target.id, attr.value], " through getattr"
        if chain and chain[0] in third_party:
            name = up_to_private([*third_party[chain[0]], *chain[1:]])
            if name:
                problems.setdefault(name, f"{where}:{node.lineno}: reaches {'.'.join(chain)}{how}: {name} is private")
    return sorted(problem for name, problem in problems.items() if name not in PRIVATE_ALLOWED)
