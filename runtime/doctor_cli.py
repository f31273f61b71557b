"""``gantool doctor``: what can run here — each backend, installed or not and why, its version, the devices it sees.

One header line for the machine (CPU, cores, Python, gantool, CUDA driver),
one for the CPU's low-precision features (VNNI, BF16, AMX), then one row per registered backend from its ``Backend.probe()``. Doctor
reports, it does not judge: it exits 0 whatever it finds, and a probe that
raises (a broken install can make an import fail in odd ways) becomes a row
with the error's first line rather than a traceback. ``--json`` prints
``{"machine": {...}, "backends": [rows]}`` for scripts.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from gantool.machine import describe_cpu_features

COLUMNS = ("backend", "installed", "version", "devices", "note")


def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help='Print {"machine": {...}, "backends": [...]} instead of a table.')
    ] = False,
) -> None:
    """Show which backends are installed, their versions, the devices (CPU, GPUs) each sees, and why one cannot run."""
    rows = probe_all()
    machine = machine_facts()
    if json_output:
        typer.echo(json.dumps({"machine": machine, "backends": rows}, indent=2))
        return
    typer.echo(
        f"machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}; "
        f"gantool {machine['gantool']}; CUDA driver: {machine['cuda_driver']}"
    )
    typer.echo(f"CPU features: {describe_cpu_features(machine['cpu_features'])} (bf16 on the torch backend needs BF16)")
    typer.echo(format_rows(rows))


def probe_all() -> list[dict[str, Any]]:
    """One dict per registered backend: backend, installed, version, devices (list), note."""
    from gantool.runtime import registry

    rows = []
    for name in registry.names():
        try:
            probe = registry.backend_class(name).probe()
            row = {
                "backend": name,
                "installed": probe.installed,
                "version": probe.version,
                "devices": list(probe.devices),
                "note": probe.note,
            }
        except Exception as exc:  # noqa: BLE001 -- doctor reports a broken backend, it never crashes on one
            row = {"backend": name, "installed": False, "version": "", "devices": [], "note": _first_line(exc)}
        rows.append(row)
    return rows


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, Python, gantool, and the CUDA version the driver supports (or why there is none)."""
    import os
    import platform

    from gantool import __version__, machine

    return {
        "cpu": machine.cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "gantool": __version__,
        "cuda_driver": _driver(),
        "cpu_features": machine.cpu_features(),
    }


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain fixed-width table (like bench's): one line per backend, devices joined with '; '."""
    cells = [list(COLUMNS)] + [
        [
            row["backend"],
            "yes" if row["installed"] else "no",
            row["version"] or "-",
            "; ".join(row["devices"]) or "-",
            row["note"],
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        ("  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) + "  " + line[-1]).rstrip()
        for line in cells
    )


def _driver() -> str:
    """The CUDA version the driver supports (``12.9``), or why there is none, via cuda-python."""
    try:
        from gantool import cuda

        return cuda.driver_cuda_version()
    except Exception as exc:  # noqa: BLE001 -- no cuda-python, no driver: a fact to report
        return f"none ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    """A gantool error's own words; anything else prefixed with its type, which may be all that tells what broke."""
    from gantool.errors import GantoolError

    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, GantoolError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
