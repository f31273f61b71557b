"""``gantool train … --nproc N``: torchrun's elastic agent, started in this process, runs N training workers.

The same job as ``torchrun --nproc_per_node N -m gantool train …``, without
remembering torchrun's flags. Each worker is ``python -m gantool train …``
with this command's options minus the launch ones; the workers find each other
through a c10d rendezvous (a free port on 127.0.0.1 for one machine, or
``--rdzv-endpoint`` for many, node rank 0 hosting it). The agent watches them:
if one dies, it stops the others and this command fails in one line; SIGINT
or SIGTERM reaches every worker, which save once (rank 0) and exit together.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gantool.errors import UsageError

LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint")
LAUNCHED_ENV = "GANTOOL_LAUNCH"  # set for the workers: the launch options, for the resume command they print
RDZV_TIMEOUT_S = 600  # how long a node waits for the others to join before the job fails


def inside_torchrun() -> bool:
    """Whether this process is already a worker of a torchrun (or --nproc) job."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def worker_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` without the launch options (``--nproc 2`` and ``--nproc=2`` alike): what each worker runs."""
    kept: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in LAUNCH_OPTIONS:
            skip = True
        elif not token.startswith(tuple(f"{name}=" for name in LAUNCH_OPTIONS)):
            kept.append(token)
    return kept


def launch_options(nproc: int, nnodes: int, node_rank: int, endpoint: str | None) -> str:
    """The launch options as a user would type them again (for a resume command)."""
    options = [f"--nproc {nproc}"]
    if nnodes > 1:
        options.append(f"--nnodes {nnodes} --node-rank {node_rank} --rdzv-endpoint {shlex.quote(str(endpoint))}")
    return " ".join(options)


def check_launch(nproc: int, nnodes: int, node_rank: int, endpoint: str | None) -> None:
    """Refuse launch options that cannot form a job, before anything starts."""
    if inside_torchrun():
        raise UsageError("--nproc/--nnodes start torchrun's agent themselves: leave them out under torchrun")
    if not 0 <= node_rank < nnodes:
        raise UsageError(f"--node-rank {node_rank} must be below --nnodes {nnodes}")
    if nnodes > 1 and not endpoint:
        raise UsageError("--nnodes above 1 needs --rdzv-endpoint HOST:PORT, the same on every node")


def resume_command_for(model: str, out: Path) -> str:
    """The command that continues an interrupted run, quoted for a POSIX shell, launched as this run was."""
    command = f"gantool train {model} --out {shlex.quote(str(out))} --resume"
    if LAUNCHED_ENV in os.environ:  # a worker of --nproc: the same launch options again
        return f"{command} {os.environ[LAUNCHED_ENV]}"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a worker of the user's own torchrun
        nodes = int(os.environ.get("GROUP_WORLD_SIZE", "1"))
        launch = f"--nnodes {nodes} (your rendezvous options) " if nodes > 1 else ""
        return f"torchrun {launch}--nproc_per_node {os.environ.get('LOCAL_WORLD_SIZE', '1')} -m {command}"
    return command


def launch_job(
    argv: Sequence[str], model: str, out: Path, resume: bool, nproc: int, nnodes: int, node_rank: int,
    endpoint: str | None,
) -> int:  # fmt: skip
    """Check the launch, refuse a resume with another world size once (not in every worker), run the workers."""
    from gantool.training.checkpoints import load_resume_state

    check_launch(nproc, nnodes, node_rank, endpoint)
    if resume and nnodes == 1:
        saved = int(load_resume_state(out).get("world_size", 1))
        if saved != nproc:
            processes = f"{saved} process{'es' if saved > 1 else ''}"
            raise UsageError(f"{out} was trained by {processes}: resume it with --nproc {saved}")
    command = f"{resume_command_for(model, out)} {launch_options(nproc, nnodes, node_rank, endpoint)}"
    return run_workers(argv, nproc, nnodes, node_rank, endpoint, command)


def run_workers(argv: Sequence[str], nproc: int, nnodes: int, node_rank: int, endpoint: str | None,
                resume_command: str) -> int:  # fmt: skip
    """Start the agent and its ``nproc`` workers on this node; returns the exit status this command should leave with.

    Rank 0 prints the run's own lines (progress, the interrupt message); this
    adds one line only when a worker died without saying why (killed by a signal).
    """
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ[LAUNCHED_ENV] = launch_options(nproc, nnodes, node_rank, endpoint)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))  # cores shared out
    for name in list(logging.root.manager.loggerDict):  # the agent's own warnings: failures are reported below
        if "elastic" in name:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc,
        rdzv_backend="c10d", rdzv_endpoint=endpoint or "127.0.0.1:0",
        rdzv_configs={"timeout": RDZV_TIMEOUT_S, "is_host": node_rank == 0},
        run_id="gantool" if nnodes > 1 else uuid.uuid4().hex, max_restarts=0, monitor_interval=0.1,
        start_method="spawn",
    )  # fmt: skip
    try:
        elastic_launch(config, sys.executable)("-m", "gantool", *worker_arguments(argv))
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        return _report(exc.failures, resume_command)
    return 0


def _report(failures: dict[int, Any], resume_command: str) -> int:
    """One line for a worker killed by a signal; otherwise the workers have spoken: rank 0's (or the first) status."""
    killed = {rank: failure for rank, failure in failures.items() if failure.exitcode < 0}
    if killed:  # the agent stops the survivors with SIGTERM: another signal names the rank that died first
        first_cause = {rank: failure for rank, failure in killed.items() if -failure.exitcode != signal.SIGTERM}
        rank, failure = min((first_cause or killed).items())
        print(
            f"error: rank {rank} (pid {failure.pid}) was killed by {failure.signal_name()}; the job stopped and keeps "
            f"its last save; resume with: {resume_command}",
            file=sys.stderr,
        )
        return 1
    first = failures.get(0) or failures[min(failures)]
    return int(first.exitcode) or 1
