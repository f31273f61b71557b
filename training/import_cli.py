"""``gantool import``: turn generators trained elsewhere into gantool checkpoints.

Only typer and the standard library are imported here at module level; torch
comes in when a command runs, so ``gantool --help`` stays fast.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from gantool.errors import UsageError

import_app = typer.Typer(
    help="Import a generator trained by another project as a gantool checkpoint (then export, translate, bench it).",
    no_args_is_help=True,
)


class Direction(str, Enum):
    a2b = "a2b"
    b2a = "b2a"


def _domains(value: str) -> tuple[str, str]:
    """``horse,zebra`` → ("horse", "zebra"): the names of domain A and domain B."""
    names = tuple(part.strip() for part in value.split(","))
    if len(names) != 2 or not all(0 < len(name) <= 64 for name in names):
        raise UsageError(f"--domains {value!r}: give two names of 1 to 64 characters, such as horse,zebra")
    return names  # type: ignore[return-value]


def _side(value: int) -> int:
    if value % 4:
        raise typer.BadParameter(f"{value} is not a multiple of 4 (the generator downsamples twice)")
    return value


@import_app.command("cyclegan")
def cyclegan(
    source: Annotated[
        Path,
        typer.Argument(
            help="A ResNet generator saved by pytorch-CycleGAN-and-pix2pix: latest_net_G_A.pth, latest_net_G_B.pth "
            "or a pretrained latest_net_G.pth.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder to write generator_<direction>.safetensors into.")
    ],
    direction: Annotated[
        Direction | None,
        typer.Option(help="Which way the generator translates. Default: from the file name (G_B: b2a, else a2b)."),
    ] = None,
    domains: Annotated[
        str, typer.Option(help="Names of domain A and domain B, comma-separated (e.g. horse,zebra).")
    ] = "A,B",
    blocks: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Residual blocks (9 or 6 in the original). Default: read from the file."),
    ] = None,
    ngf: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Filters of the first layer (64). Default: read from the file.")
    ] = None,
    size: Annotated[
        int,
        typer.Option(
            min=4,
            max=4096,
            callback=_side,
            help="Native image side recorded in the spec (the original trains at 256); any multiple of 4 runs.",
        ),
    ] = 256,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing checkpoint for this direction.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Convert a pytorch-CycleGAN-and-pix2pix ResNet generator (.pth) into a verified gantool checkpoint.

    The file is read with torch.load(weights_only=True), so a pickle that carries
    code is refused. DataParallel 'module.' prefixes, the InstanceNorm running
    statistics of PyTorch < 0.4 files and blocks trained with dropout are
    accepted; any other missing, extra or misshapen key is refused by name. The
    written checkpoint must reproduce the original weights' outputs (max abs
    difference ≤ 1e-5) or nothing is written. Import G_A and G_B into the same
    --out to get both directions of a CycleGAN run.
    """
    from gantool.training.import_cyclegan import guess_direction, import_cyclegan

    chosen = direction.value if direction is not None else guess_direction(source.name)
    result = import_cyclegan(
        source, out, direction=chosen, domains=_domains(domains), size=size, blocks=blocks, ngf=ngf, force=force
    )
    spec = result.spec
    if as_json:
        summary = {
            "checkpoint": str(result.path), "direction": spec.direction, "domains": list(spec.domains or ()),
            "blocks": spec.arch_params["blocks"], "ngf": spec.arch_params["ngf"], "channels": spec.channels,
            "params": result.params, "max_abs_diff": result.max_abs_diff, "dropped_keys": result.dropped_keys,
            "dropout": result.dropout, "sha256": spec.provenance["sha256"],
        }  # fmt: skip
        typer.echo(json.dumps(summary))
        return
    dropped = f", dropped {result.dropped_keys} InstanceNorm running-stat keys" if result.dropped_keys else ""
    a, b = spec.domains or ("A", "B")
    source_domain, target_domain = (a, b) if spec.direction == "a2b" else (b, a)
    typer.echo(
        f"imported {source.name}: {spec.direction} ({source_domain}→{target_domain}), "
        f"{spec.arch_params['blocks']} blocks, ngf {spec.arch_params['ngf']}, {result.params:,} params, "
        f"max abs diff {result.max_abs_diff:.1e}{dropped} -> {result.path}"
    )
