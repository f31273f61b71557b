"""The timing rules shared by ``gantool bench`` and the measured ``auto`` choice, on synthetic clocks and timings."""

from __future__ import annotations

import numpy as np
import pytest

from gantool.timing import check_interval, is_stable, percentile, summarize, time_runs


def test_percentile_interpolates_like_numpy() -> None:
    values = sorted(np.random.default_rng(0).exponential(size=101).tolist())
    for q in (0, 1, 25, 50, 75, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == pytest.approx(4.6)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summarize_reports_milliseconds_spread_and_images_per_second() -> None:
    stats = summarize([0.004, 0.001, 0.003, 0.002], batch_size=8, stable=False)
    assert (stats.runs, stats.stable, stats.min_ms, stats.max_ms) == (4, False, pytest.approx(1.0), pytest.approx(4.0))
    assert stats.mean_ms == pytest.approx(2.5) and stats.p50_ms == pytest.approx(2.5)
    assert stats.std_ms == pytest.approx(np.std([1, 2, 3, 4])) and stats.iqr_ms == pytest.approx(1.5)
    assert stats.images_per_s == pytest.approx(8 / 0.0025)
    with pytest.raises(ValueError):
        summarize([], batch_size=1)


def test_a_median_is_stable_when_more_runs_no_longer_move_it() -> None:
    steady = [1.0, 1.1, 0.9] * 10
    assert is_stable(steady, interval=5)
    assert is_stable([*steady[:-1], 50.0], interval=5)  # one preempted run moves the mean, not the median
    assert not is_stable(steady[:9], interval=5)  # too few runs to have a trend
    warming = [2.0] * 10 + [1.0] * 10  # still getting faster (caches, clocks ramping up)
    assert not is_stable(warming, interval=5)


class FakeClock:
    """A clock that only moves when the fake workload runs (``step`` seconds per call; quarters are exact in binary)."""

    def __init__(self, step: float = 0.25, growth: float = 0.0) -> None:
        self.now, self.step, self.growth = 0.0, step, growth
        self.seen: list[int] = []

    def __call__(self) -> float:
        return self.now

    def run(self, item: int) -> None:
        self.seen.append(item)
        self.now += self.step
        self.step += self.growth  # a workload that keeps slowing down never settles


def test_the_cold_call_and_the_warmup_are_timed_apart_from_the_warm_runs() -> None:
    clock = FakeClock()
    timing = time_runs(clock.run, [0, 1, 2], warmup_s=1.0, min_runs=3, max_s=100.0, clock=clock)
    assert timing.cold_s == 0.25 and timing.warmup_runs == 4
    assert timing.stable and timing.durations == [0.25] * 2 * check_interval(3)  # settled: stopped long before 100 s
    assert len(clock.seen) == 1 + 4 + len(timing.durations)
    assert clock.seen[:7] == [0, 1, 2, 0, 1, 2, 0]  # inputs cycle, so no run sees the data of the one before


def test_a_cell_that_never_settles_stops_on_its_budget_and_says_so() -> None:
    clock = FakeClock(growth=0.0625)
    timing = time_runs(clock.run, [0], warmup_s=0.0, min_runs=3, max_s=20.0, clock=clock)
    assert not timing.stable and sum(timing.durations) >= 20.0
    assert timing.durations == sorted(timing.durations)


def test_min_runs_are_reached_past_the_budget() -> None:
    clock = FakeClock()
    timing = time_runs(clock.run, [0], warmup_s=0.0, min_runs=25, max_s=1.0, clock=clock)
    assert len(timing.durations) == 25 and timing.warmup_runs == 1  # the warm-up always runs at least once


def test_sync_runs_inside_each_timed_interval() -> None:
    clock = FakeClock()

    def device_finishes() -> None:  # asynchronous work the clock must wait for
        clock.now += 0.5

    timing = time_runs(clock.run, [0], warmup_s=0.0, min_runs=10, max_s=1.0, sync=device_finishes, clock=clock)
    assert timing.cold_s == 0.75 and set(timing.durations) == {0.75}
