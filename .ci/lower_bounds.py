"""Print pip/uv constraints that pin every dependency of pyproject.toml to its declared lower bound.

Usage: python3 .ci/lower_bounds.py [pyproject.toml]  ->  one ``name==version`` per line on stdout.

Every entry of ``[project] dependencies`` must carry a ``>=`` lower bound: one without it fails here,
so CI cannot quietly stop testing a floor. torch is the exception: its bound cannot be installed on
the CI machines (the only CPU build of torch they reach is 2.13.0+cpu, in /opt/wheels; any other
version is a multi-GB CUDA download), so it is pinned to that build instead and its declared lower
bound stays untested.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TORCH_PIN = "torch==2.13.0+cpu"
REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?")


def lower_bounds(pyproject: Path) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = []
    for requirement in dependencies:
        match = REQUIREMENT.fullmatch(requirement)
        if match is None:
            sys.exit(f"error: cannot read the requirement {requirement!r} in {pyproject}")
        name, _extras, specifiers, marker = match.groups()
        if marker:
            sys.exit(f"error: {requirement!r}: environment markers are not handled here; extend .ci/lower_bounds.py")
        if name.lower() == "torch":
            pins.append(TORCH_PIN)
            continue
        floors = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if len(floors) != 1:
            sys.exit(f"error: {requirement!r} in {pyproject} needs exactly one '>=' lower bound for CI to test")
        pins.append(f"{name}=={floors[0]}")
    return pins


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(lower_bounds(path)))
