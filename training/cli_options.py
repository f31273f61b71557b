"""The options every ``gantool train`` command takes (device, resume, saves, evaluation, processes, precision), spelled once."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


DeviceOption = Annotated[Device, typer.Option(help="auto: CUDA if available, else CPU.")]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped (its newest saved state).")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Start over in a non-empty --out, replacing its run files.")]
SaveEveryOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Also save every N steps into --out/checkpoints/step_NNNNNNN/ (default: at epoch ends and on Ctrl-C).",
    ),
]
KeepOption = Annotated[int, typer.Option(min=1, help="Periodic checkpoints (--save-every) to keep, newest first.")]
EvalEveryOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Every N epochs (and after the last) log KID, FID and the digit classifier's figures to metrics.jsonl, "
        "as gantool eval measures them.",
        show_default=False,
    ),
]
EvalSamplesOption = Annotated[int, typer.Option(min=10, help="With --eval-every, GAN: samples per evaluation.")]
TensorBoardOption = Annotated[
    bool,
    typer.Option(
        "--tensorboard",
        help="Also write losses, D(x), D(G(z)), --eval-every's figures and the sample grids as TensorBoard events "
        "in RUN/tensorboard (needs the tensorboard extra).",
    ),
]

NprocOption = Annotated[
    int | None,
    typer.Option(
        min=1, max=1024, rich_help_panel="Many processes",
        help="Train over N processes on this machine (DDP; one per GPU on CUDA), launched by torchrun's agent. "
        "--batch-size is per process.", show_default=False,
    ),
]  # fmt: skip
NnodesOption = Annotated[
    int, typer.Option(min=1, max=4096, rich_help_panel="Many processes", help="Machines in the job (with --nproc).")
]
NodeRankOption = Annotated[
    int, typer.Option(min=0, rich_help_panel="Many processes", help="This machine's index, 0 hosting the rendezvous.")
]
RdzvEndpointOption = Annotated[
    str | None,
    typer.Option(
        rich_help_panel="Many processes", show_default=False,
        help="HOST:PORT of node 0's rendezvous, the same on every machine (needed with --nnodes above 1).",
    ),
]  # fmt: skip


class Amp(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    off = "off"


AmpOption = Annotated[
    Amp,
    typer.Option(
        help="Mixed precision: autocast to bf16, or fp16 with a gradient scaler; auto is bf16 on a GPU that has "
        "it (fp16 on older ones) and off (FP32) on the CPU.",
    ),
]
