"""Timing loops and latency statistics, kept free of any backend so they can be tested on synthetic timings.

The measurement follows the usual rules of perf tools (trtexec,
perf_analyzer): warm-up runs are timed by wall clock and thrown away; timed
runs wrap only the call being measured with ``time.perf_counter``; a cell
stops once it has at least ``min_runs`` runs and has used its time budget,
so a slow model still gets enough runs and a fast one does not run forever.
Throughput is derived from the mean latency: images/s = batch / mean.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_RUNS = 100_000  # a safety cap for microsecond-fast calls on a long budget


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one backend × batch-size cell; times in milliseconds."""

    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, linearly interpolated (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize(seconds: Sequence[float], batch_size: int) -> LatencyStats:
    """Latency percentiles and throughput from per-run durations in seconds."""
    if not seconds:
        raise ValueError("no timed runs to summarize")
    ms = sorted(s * 1000.0 for s in seconds)
    mean = sum(ms) / len(ms)
    return LatencyStats(
        runs=len(ms),
        mean_ms=mean,
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        min_ms=ms[0],
        max_ms=ms[-1],
        images_per_s=batch_size / (mean / 1000.0) if mean > 0 else math.inf,
    )


def time_runs(
    run: Callable[[Any], object],
    inputs: Sequence[Any],
    *,
    warmup_s: float,
    min_runs: int,
    max_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Warm up for ``warmup_s`` (at least one run), then time runs cycling through ``inputs``.

    Cycling through several inputs keeps a backend from benefiting from
    identical data run after run. Timed runs go on for up to ``max_s``
    seconds of wall clock, longer only to reach ``min_runs``.
    Returns each timed run's duration in seconds.
    """
    if not inputs:
        raise ValueError("time_runs needs at least one input")
    if min_runs < 1:
        raise ValueError("min_runs must be ≥ 1")
    started = clock()
    i = 0
    while True:  # warm-up, excluded from the results
        run(inputs[i % len(inputs)])
        i += 1
        if clock() - started >= warmup_s:
            break
    durations: list[float] = []
    timed_from = end = clock()
    while len(durations) < MAX_RUNS and (len(durations) < min_runs or end - timed_from < max_s):
        batch = inputs[i % len(inputs)]
        i += 1
        begin = clock()
        run(batch)
        end = clock()
        durations.append(end - begin)
    return durations
