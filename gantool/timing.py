"""Timing loops and latency statistics, free of any backend so they can be tested on synthetic timings.

Shared by ``gantool bench`` (benchmarks/) and the measured ``auto`` backend
choice (runtime/). The rules are the usual ones of perf tools (trtexec,
perf_analyzer):

- the first call after loading is timed on its own (``cold``): it pays for
  lazy initialisation, kernel selection, graph capture, and is never counted
  as a warm run;
- warm-up runs are timed by wall clock and thrown away;
- timed runs wrap only the call (plus ``sync``, for work that a device runs
  asynchronously) with ``time.perf_counter``, cycling through several inputs
  so no backend profits from seeing the same data twice;
- a cell stops once it has at least ``min_runs`` runs, at least ``min_s`` of
  timed wall clock, and a *stable* median (see ``is_stable``), or when its
  ``max_s`` budget is spent, whichever comes first; ``stable`` says which.

Throughput is images per second of the mean latency (what a stream of
batches achieves); the spread is reported as the standard deviation and the
interquartile range, so two results can be compared against their noise.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_RUNS = 100_000  # a safety cap for microsecond-fast calls on a long budget
STABLE_TOLERANCE = 0.01  # the median moved by at most 1% between two checks
MIN_TIMED_S = 0.25  # never call a median stable on less timed wall clock than this (bounded by max_s)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one timed cell; times in milliseconds."""

    runs: int
    stable: bool  # the median settled before the time budget ran out
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    iqr_ms: float  # p75 − p25: the spread a comparison should respect
    images_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    """What ``time_runs`` measured: the cold first call, the warm-up count, the timed runs, and whether it settled."""

    cold_s: float
    warmup_runs: int
    durations: list[float]
    stable: bool


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linearly interpolated (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize(seconds: Sequence[float], batch_size: int, stable: bool = True) -> LatencyStats:
    """Latency percentiles, spread and throughput from per-run durations in seconds."""
    if not seconds:
        raise ValueError("no timed runs to summarize")
    ms = sorted(s * 1000.0 for s in seconds)
    mean = sum(ms) / len(ms)
    return LatencyStats(
        runs=len(ms),
        stable=stable,
        mean_ms=mean,
        std_ms=statistics.pstdev(ms) if len(ms) > 1 else 0.0,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        min_ms=ms[0],
        max_ms=ms[-1],
        iqr_ms=percentile(ms, 75) - percentile(ms, 25),
        images_per_s=batch_size / (mean / 1000.0) if mean > 0 else math.inf,
    )


def check_interval(min_runs: int) -> int:
    """How many runs between two stability checks: often enough to stop early, rarely enough to see a trend."""
    return max(5, min_runs // 2)


def is_stable(durations: Sequence[float], interval: int, tolerance: float = STABLE_TOLERANCE) -> bool:
    """Whether the median of all runs moved by at most ``tolerance`` (relative) over the last ``interval`` runs.

    Medians, not means: one preempted run (a context switch, a GC pause)
    moves the mean but not the median, and a median that no longer moves as
    runs are added is the figure a longer run would also report.
    """
    if len(durations) < 2 * interval:
        return False
    before = statistics.median(durations[:-interval])
    now = statistics.median(durations)
    return before > 0 and abs(now - before) / before <= tolerance


def time_runs(
    run: Callable[[Any], object],
    inputs: Sequence[Any],
    *,
    warmup_s: float,
    min_runs: int,
    max_s: float,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    tolerance: float = STABLE_TOLERANCE,
) -> Timing:
    """Time the cold first call, warm up for ``warmup_s`` (at least one more run), then time until stable or ``max_s``.

    ``sync`` (if given) runs inside every timed interval, after the call: for
    work a device finishes asynchronously, the clock is read only once it has.
    """
    if not inputs:
        raise ValueError("time_runs needs at least one input")
    if min_runs < 1:
        raise ValueError("min_runs must be ≥ 1")

    def timed(batch: Any) -> float:
        begin = clock()
        run(batch)
        if sync is not None:
            sync()
        return clock() - begin

    cold_s = timed(inputs[0])
    i, warmup_runs, started = 1, 0, clock()
    while warmup_runs < 1 or clock() - started < warmup_s:  # excluded from the results
        run(inputs[i % len(inputs)])
        i += 1
        warmup_runs += 1
    if sync is not None:
        sync()
    interval, min_s = check_interval(min_runs), min(MIN_TIMED_S, max_s)
    durations: list[float] = []
    timed_from = clock()
    stable = False
    while len(durations) < MAX_RUNS:
        durations.append(timed(inputs[i % len(inputs)]))
        i += 1
        elapsed = clock() - timed_from
        if len(durations) < min_runs:
            continue
        if len(durations) % interval == 0 and elapsed >= min_s and is_stable(durations, interval, tolerance):
            stable = True
            break
        if elapsed >= max_s:
            break
    return Timing(cold_s=cold_s, warmup_runs=warmup_runs, durations=durations, stable=stable)
