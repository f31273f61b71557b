"""Training over many processes: torchrun's process group, DDP, the data shards, rank-0 I/O, all-reduced metrics.

Every run goes through a ``World``; a plain ``gantool train`` is a world of
one, which skips the process group and wraps nothing, so it trains exactly as
before. Under ``torchrun`` (or ``--nproc``) each process is one rank:

- the process group is NCCL on CUDA and gloo on the CPU, joined from the
  environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT);
- modules train through ``DistributedDataParallel``, which averages gradients
  over the ranks during backward; ``--batch-size`` is per rank;
- the data is sharded with ``DistributedSampler`` and ``set_epoch``; the noise
  of a batch is drawn for the whole global batch and each rank takes its rows,
  so N ranks of batch b walk the same global sequence as one process of N·b;
- each step's losses are all-reduced, and so is the stop request: every rank
  logs the same means, sees the same non-finite loss, and stops at the same step;
- only rank 0 writes (checkpoints, grids, metrics, state); what differs per rank
  (random streams, CycleGAN's image pools) is gathered into rank 0's save.

The DDP wrappers belong to the World and are dropped before the process group
is destroyed: workers can abort at exit otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gantool.errors import GantoolError, RankLost

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DistributedSampler

# How long a collective waits for a rank that is alive but silent (rank 0 evaluating, saving, a slow disk).
# A rank that dies closes its sockets, which its peers notice at once; this bounds only a hang.
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun sets it for its workers; 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """RANK as torchrun sets it for its workers; 0 outside torchrun (the process that talks to the user)."""
    return int(os.environ.get("RANK", "0"))


class Replica:
    """A module as the training step calls it: through DDP in a world of many, directly in a world of one."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.wrapper: nn.Module | None = None

    def __call__(self, *args: Any) -> Any:
        return (self.wrapper if self.wrapper is not None else self.module)(*args)


@dataclass
class World:
    """This process's place in the job: ``rank`` of ``size`` (0 of 1 outside torchrun)."""

    rank: int = 0
    size: int = 1
    replicas: list[Replica] = field(default_factory=list)

    @property
    def main(self) -> bool:
        """Whether this rank writes the run's files and talks to the user."""
        return self.rank == 0

    def parallel(self, module: nn.Module) -> Replica:
        """``module`` as the step should call it: DDP-wrapped when there are other ranks to average with.

        No ``find_unused_parameters``: the trainers freeze a network
        (``requires_grad_(False)``) in the other network's step, so every
        parameter that requires a gradient gets one.
        """
        replica = Replica(module)
        if self.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            device = next(module.parameters()).device
            ids = [device.index] if device.type == "cuda" else None
            replica.wrapper = DistributedDataParallel(module, device_ids=ids)
        self.replicas.append(replica)
        return replica

    def sampler(self, count: int, seed: int) -> DistributedSampler[int]:
        """``DistributedSampler`` over ``count`` items: this rank's share of one shuffled global order per epoch.

        ``drop_last``: every rank gets count // size items, so all ranks take the
        same number of steps. Rank r's k-th batch of b holds positions
        r, r+N, … of the global batch k of N·b.
        """
        from torch.utils.data import DistributedSampler

        return DistributedSampler(range(count), self.size, self.rank, shuffle=True, seed=seed, drop_last=True)  # type: ignore[arg-type]

    def share(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's equal slice of a tensor drawn for the whole global batch (size·b rows → b rows)."""
        per_rank = len(rows) // self.size
        return rows[self.rank * per_rank : (self.rank + 1) * per_rank]

    def average(self, values: torch.Tensor) -> torch.Tensor:
        """The ranks' mean of ``values``."""
        if self.size == 1:
            return values
        summed = values.detach().clone()
        self._collective("all_reduce", summed)
        return summed / self.size

    def agree(self, stop: bool, device: torch.device) -> bool:
        """Whether any rank asked to stop: every rank leaves at the same point or none does."""
        if self.size == 1:
            return stop
        import torch

        flag = torch.tensor([float(stop)], device=device)
        self._collective("all_reduce", flag)
        return bool(flag.item() > 0)

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` at rank 0, in rank order (an empty list elsewhere)."""
        if self.size == 1:
            return [value]
        gathered: list[Any] = [None] * self.size if self.main else []
        self._collective("gather_object", value, gathered if self.main else None, dst=0)
        return gathered

    def check_same_weights(self, digest: str) -> None:
        """Refuse to save when the ranks' weights differ: DDP keeps them identical, so a difference is a bug."""
        digests = self.gather(digest)
        if self.main and len(set(digests)) > 1:
            raise GantoolError(f"the ranks' weights differ at a save point ({', '.join(d[:8] for d in digests)})")

    def _collective(self, name: str, *args: Any, **kwargs: Any) -> None:
        import torch.distributed as dist

        try:
            getattr(dist, name)(*args, **kwargs)
        except (dist.DistError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RankLost(f"rank {self.rank} lost contact with the other ranks ({first[:200]})") from None

    def release(self) -> None:
        """Drop the DDP wrappers; the modules stay."""
        for replica in self.replicas:
            replica.wrapper = None
        self.replicas.clear()


@contextmanager
def joined(device: torch.device) -> Iterator[World]:
    """The job's World for the duration of training: the process group joined, then left cleanly.

    Outside torchrun it is a world of one and nothing is initialised. Inside,
    the backend follows the device: NCCL for CUDA, gloo for the CPU.
    """
    size = launched_world_size()
    if size == 1:
        yield World()
        return
    import gc

    import torch
    import torch.distributed as dist

    rank = launched_rank()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(
            backend, timeout=COLLECTIVE_TIMEOUT, device_id=device if device.type == "cuda" else None
        )
    except (dist.DistError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RankLost(f"rank {rank} could not join the process group ({first[:200]})") from None
    world = World(rank=rank, size=size)
    try:
        yield world
    finally:
        world.release()
        gc.collect()  # the wrappers' reducers must be gone before the group they use
        dist.destroy_process_group()


def per_rank_seed(seed: int, rank: int, stream: int) -> int:
    """The seed of a random stream that must differ per rank (dropout masks, image pools); rank 0 keeps the world-of-one seed."""
    from gantool.training.loop import sub_seed

    return sub_seed(seed, stream) if rank == 0 else sub_seed(seed, stream, rank)


def job_summary(world: World, device: torch.device, batch_size: int, precision: str) -> str:
    """What rank 0 says as training starts (stderr): the precision, and for many processes the backend and batches."""
    lines = [precision]
    if world.size > 1:
        backend = "NCCL" if device.type == "cuda" else "gloo"
        lines.append(
            f"training on {world.size} processes ({backend}): batch {batch_size} per process, "
            f"global batch {batch_size * world.size}"
        )
    return "\n".join(lines)
