"""Does ``--backend auto`` pick the fastest backend? Its pick at each batch size vs. `gantool bench` of every candidate.

For each batch size B: in a fresh process with an empty cache folder (so it
measures, as on a new machine), ``registry.choose(RUN, batch_size=B)`` says what
``auto`` picks; then `gantool bench` times every candidate ``auto`` weighed
(the same backends, devices and precisions) at all the batch sizes, with its
full budget, in one separate process per device. Per batch size the pick is
checked against the bench figures:

- within 5% of the best: pick p50 ≤ 1.05 × best p50;
- never slower than the slowest by more than the spread: pick p50 ≤ slowest p50 + the larger IQR of the two.

Prints a Markdown table and a JSON summary (--json also writes it).

    python benchmarks/scripts/auto_vs_best.py runs/digits --batch-sizes 1,8,64,256 \
        --json benchmarks/results/auto_vs_best_digits.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from script_common import environment, save

from gantool.artifacts import checkpoint_in
from gantool.runtime import gpu, registry

WITHIN = 1.05
PICK = """
import json, sys
from pathlib import Path
from gantool.runtime import registry
choice = registry.choose(Path(sys.argv[1]), direction=sys.argv[2] or None, batch_size=int(sys.argv[3]))
print(json.dumps({"backend": choice.name, "device": choice.device, "precision": choice.precision,
                  "reason": choice.reason}))
"""


def auto_pick(run: Path, direction: str, batch: int) -> dict[str, Any]:
    """What auto picks at ``batch``, measured now: a fresh process, an empty cache folder."""
    cache = tempfile.mkdtemp(prefix="auto_vs_best.")
    try:
        env = {**os.environ, "GANTOOL_CACHE_DIR": cache}
        command = [sys.executable, "-c", PICK, str(run), direction, str(batch)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if result.returncode != 0:
        sys.exit(f"auto failed at batch {batch}:\n{result.stderr}")
    return json.loads(result.stdout)


def bench_rows(run: Path, direction: str, found: list[registry.Choice], args: argparse.Namespace) -> list[dict]:
    """`gantool bench --json` rows of every candidate, one bench process per device and precision."""
    rows: list[dict] = []
    groups = sorted({(c.device, c.precision) for c in found})
    for device, precision in groups:
        names = ",".join(dict.fromkeys(c.name for c in found if (c.device, c.precision) == (device, precision)))
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "bench.json"
            command = [sys.executable, "-m", "gantool", "bench", str(run), "--backends", names, "--device", device]
            command += ["--precisions", precision, "--batch-sizes", args.batch_sizes, "--json", str(report)]
            command += ["--warmup-s", str(args.warmup_s), "--min-runs", str(args.min_runs), "--max-s", str(args.max_s)]
            if direction:
                command += ["--direction", direction]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                sys.exit(f"bench failed: {' '.join(command)}\n{result.stderr}")
            rows += [row for row in json.loads(report.read_text())["rows"] if row["status"] == "ok"]
    return rows


def verdict(pick: dict[str, Any], rows: list[dict]) -> dict[str, Any]:
    """The pick's bench figures against the best and the slowest candidate at one batch size."""
    key = (pick["backend"], pick["device"], pick["precision"])
    mine = next(row for row in rows if (row["backend"], row["device"], row["precision"]) == key)
    best = min(rows, key=lambda row: row["p50_ms"])
    slowest = max(rows, key=lambda row: row["p50_ms"])
    spread = max(mine["iqr_ms"], slowest["iqr_ms"])
    return {
        "pick_p50_ms": mine["p50_ms"],
        "best": f"{best['backend']} on {best['device']} {best['precision']}",
        "best_p50_ms": best["p50_ms"],
        "slowest_p50_ms": slowest["p50_ms"],
        "pick_vs_best": mine["p50_ms"] / best["p50_ms"],
        "within_5_percent": mine["p50_ms"] <= WITHIN * best["p50_ms"],
        "not_slower_than_slowest_beyond_spread": mine["p50_ms"] <= slowest["p50_ms"] + spread,
        "candidates": {f"{r['backend']}/{r['device']}/{r['precision']}": r["p50_ms"] for r in rows},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="an exported gantool run dir")
    parser.add_argument("--batch-sizes", default="1,8,64,256")
    parser.add_argument("--direction", default="", help="a2b or b2a for a CycleGAN run (default: a2b)")
    parser.add_argument("--warmup-s", type=float, default=0.5, help="bench's warm-up per cell")
    parser.add_argument("--min-runs", type=int, default=10, help="bench's timed runs per cell, at least")
    parser.add_argument("--max-s", type=float, default=2.0, help="bench's budget per cell")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if not args.direction and checkpoint_in(args.run_dir, "a2b").is_file():
        args.direction = "a2b"  # as auto does: bench would otherwise time both translators, mixing their rows
    found = registry.candidates(args.run_dir, args.direction or None, "auto", None, gpu.scan())
    if len(found) < 2:
        sys.exit(f"auto has nothing to choose for {args.run_dir}: only {found[0].name} can run it here")
    batches = [int(text) for text in args.batch_sizes.split(",")]
    picks = {batch: auto_pick(args.run_dir, args.direction, batch) for batch in batches}
    rows = bench_rows(args.run_dir, args.direction, found, args)
    results = []
    for batch in batches:
        at_batch = [row for row in rows if row["batch_size"] == batch]
        results.append({"batch_size": batch, "auto": picks[batch], **verdict(picks[batch], at_batch)})

    print("| batch | auto picks | its p50 ms | best (bench) | best p50 ms | pick/best | within 5% | ≤ slowest+spread |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        pick = result["auto"]
        print(
            f"| {result['batch_size']} | {pick['backend']} on {pick['device']} | {result['pick_p50_ms']:.3f} "
            f"| {result['best']} | {result['best_p50_ms']:.3f} | {result['pick_vs_best']:.3f} "
            f"| {'yes' if result['within_5_percent'] else 'NO'} "
            f"| {'yes' if result['not_slower_than_slowest_beyond_spread'] else 'NO'} |"
        )
    summary = {
        "environment": environment(("torch", "onnxruntime", "numpy", "gantool")),
        "command": " ".join(sys.argv),
        "model": str(args.run_dir),
        "candidates": [f"{c.name}/{c.device}/{c.precision}" for c in found],
        "results": results,
        "all_within_5_percent": all(result["within_5_percent"] for result in results),
    }
    save(summary, args.json)


if __name__ == "__main__":
    main()
