"""``--shard K/M``: one of M array-job tasks (Slurm, a Kubernetes Indexed Job) does shard K of the work.

A shard is a contiguous range of sample indices (``generate``) or of the sorted
input list (``translate``), worked out from K, M and the total alone: every task
computes its own range with no coordination, and since sample i depends only
on (seed, i), the M shards' files together are exactly one unsharded run's.

Only the standard library and gantool.errors: runtime/cli.py imports this at
the top, where ``gantool generate``'s start-up time counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gantool.errors import UsageError

_SYNTAX = re.compile(r"\s*([+-]?\d+)\s*/\s*([+-]?\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, 1-based: ``Shard.parse("2/4")``; ``Shard(1, 1)`` is the whole job."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/M`` as the user typed it; UsageError (one line) for bad syntax, M < 1 or K outside 1..M."""
        found = _SYNTAX.fullmatch(text)
        if found is None:
            raise UsageError(f"--shard takes K/M (shard K of M, counting from 1), e.g. 2/4; got {text!r}")
        index, count = int(found[1]), int(found[2])
        if count < 1:
            raise UsageError(f"--shard {text}: M, the number of shards, must be at least 1")
        if not 1 <= index <= count:
            zero_based = " (Kubernetes' JOB_COMPLETION_INDEX counts from 0: use index+1)" if index == 0 else ""
            raise UsageError(f"--shard {text}: K must be in 1..{count}, shards count from 1{zero_based}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def range(self, total: int) -> tuple[int, int]:
        """``(start, stop)`` of this shard's items out of ``total``: contiguous, sizes differ by at most one.

        The first ``total % count`` shards take one item more, so shard sizes
        never depend on anything but (total, count) and the ranges tile
        ``0 .. total-1`` in order. With more shards than items the last ones are
        empty (``start == stop``).
        """
        base, extra = divmod(total, self.count)
        start = (self.index - 1) * base + min(self.index - 1, extra)
        return start, start + base + (1 if self.index <= extra else 0)

    def describe(self, total: int, items: str) -> str:
        """``shard 2/4: samples 250..499 of 1000`` (0-based, as sample file names count), for messages."""
        start, stop = self.range(total)
        if start == stop:
            return f"shard {self} of {total} {items} is empty (more shards than {items}): nothing to write"
        return f"shard {self}: {items} {start}..{stop - 1} of {total}"


def shard_help(items: str) -> str:
    """The ``--shard`` help of a command that splits ``items`` ("the -n samples", "the inputs, sorted by name")."""
    return (
        f"K/M: do only shard K of M (K counts from 1): a contiguous range of {items}, written under the names a "
        "whole run gives them. For array jobs: Slurm --array=1-M with ${SLURM_ARRAY_TASK_ID}/M, a Kubernetes "
        "Indexed Job with $((JOB_COMPLETION_INDEX+1))/M. A shard left empty (more shards than items) writes "
        "nothing and exits 0."
    )
