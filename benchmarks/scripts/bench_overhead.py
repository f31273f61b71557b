"""Does gantool's timing loop add to what it measures? time_runs vs. a bare loop, on a ~0.1 ms backend call.

The model is the digits MLP generator on onnxruntime at batch 1 (about 0.07 ms
per call on a 2-core CPU): the fastest call gantool times, so any overhead of
the loop (a clock read before and after each call, the input rotation, the
stability checks) shows here first. The two methods are interleaved, R rounds
of each, so drift (frequency scaling, a neighbour's load) hits both alike:

- gantool: ``gantool.timing.time_runs(backend.run, inputs, ...)``, its median per call;
- bare: ``for batch in inputs: backend.run(batch)`` over blocks of M calls
  with no clock inside, each block's time / M, the median over blocks.

Prints a JSON summary with both medians (ms per call) and their ratio (--json also writes it).

    python benchmarks/scripts/bench_overhead.py runs/digits --rounds 5 --json benchmarks/results/bench_overhead.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from script_common import environment, save

from gantool.latents import latent_batch
from gantool.runtime import registry
from gantool.timing import summarize, time_runs

INPUT_VARIANTS = 4  # as gantool bench cycles its inputs


def bare_loop(run, inputs: list, seconds: float, block: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Per-call seconds of each block of ``block`` calls, for about ``seconds``: no clock between calls."""
    per_call, started = [], time.perf_counter()
    batches = [inputs[i % len(inputs)] for i in range(block)]
    while time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        for batch in batches:
            run(batch)
        per_call.append((time.perf_counter() - begin) / block)
    return per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a GAN run dir or .onnx file (default use: runs/digits)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each method")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per method per round")
    parser.add_argument("--block", type=int, default=100, help="calls per block of the bare loop")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    backend = registry.create(args.backend, args.model, "cpu")
    latent_dim = backend.spec.latent_dim
    if latent_dim is None:
        raise SystemExit(f"{args.model} is a translator: this script times a GAN generator")
    inputs = [latent_batch(variant, 0, args.batch_size, latent_dim) for variant in range(INPUT_VARIANTS)]
    backend.warmup(args.batch_size, min_seconds=0.5)

    gantool_medians, bare_medians, gantool_runs = [], [], 0
    for _ in range(args.rounds):
        timing = time_runs(backend.run, inputs, warmup_s=0.1, min_runs=10, max_s=args.seconds)
        stats = summarize(timing.durations, args.batch_size, timing.stable)
        gantool_medians.append(stats.p50_ms)
        gantool_runs += stats.runs
        bare_medians.append(statistics.median(bare_loop(backend.run, inputs, args.seconds, args.block)) * 1000)

    gantool_ms, bare_ms = statistics.median(gantool_medians), statistics.median(bare_medians)
    summary = {
        "environment": environment(("onnxruntime", "torch", "numpy", "gantool")),
        "model": str(backend.artifact),
        "backend": backend.describe(),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "gantool_p50_ms": gantool_ms,
        "bare_p50_ms": bare_ms,
        "ratio": gantool_ms / bare_ms,
        "gantool_p50_ms_per_round": gantool_medians,
        "bare_p50_ms_per_round": bare_medians,
        "gantool_timed_runs": gantool_runs,
    }
    save(summary, args.json)


if __name__ == "__main__":
    main()
