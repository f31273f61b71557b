"""End to end, process start to exit: `gantool generate` (auto, and the .onnx named) vs. the plain PyTorch script.

All commands write N PNGs of the same generator. `gantool generate RUN` lets
``auto`` pick the backend by measurement: its first run on a machine measures
the candidates (reported on its own line, "first run"), later runs read the
cached choice, and those are the runs timed against the plain script. Each
command is run R times,
alternating so that neither always runs on a warm page cache, and timed with
/usr/bin/time (wall seconds and peak RSS of the whole process). Prints a
Markdown table and writes the raw figures as JSON.

    python benchmarks/scripts/generate_vs_plain.py runs/digits -n 1000 --repeats 5 \
        --json benchmarks/results/generate_vs_plain.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from script_common import environment, print_speedups, save, summarize_runs, timed

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a trained and exported gantool run dir")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    onnx_file, checkpoint = args.run_dir / "generator.onnx", args.run_dir / "generator.safetensors"
    cache = Path(tempfile.mkdtemp(prefix="gantool-cache-"))  # a fresh auto cache: the first run measures
    env = {**os.environ, "GANTOOL_CACHE_DIR": str(cache)}

    def auto(out: str) -> list[str]:
        return [sys.executable, "-m", "gantool", "generate", str(args.run_dir), "-n", str(args.n), "--out", out]

    scratch = Path(tempfile.mkdtemp())
    first_run = timed(auto(str(scratch / "out")), env)[:2]
    shutil.rmtree(scratch)
    commands = {
        "gantool generate RUN (auto, cached)": auto,
        "gantool generate MODEL.onnx (onnxruntime)": lambda out: [
            sys.executable,
            "-m",
            "gantool",
            "generate",
            str(onnx_file),
            "-n",
            str(args.n),
            "--out",
            out,
        ],
        "plain PyTorch script": lambda out: [
            sys.executable,
            str(HERE / "plain_torch_generate.py"),
            str(checkpoint),
            out,
            "-n",
            str(args.n),
        ],
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, make in commands.items():
            scratch = Path(tempfile.mkdtemp())
            runs[name].append(timed(make(str(scratch / "out")), env)[:2])
            shutil.rmtree(scratch)

    rows = summarize_runs(runs)
    shutil.rmtree(cache)
    print_speedups(rows, "plain PyTorch script", f"command (n={args.n}, {args.repeats} runs)")
    print(f"| gantool generate RUN, first run (measures auto) | {first_run[0]:.2f} | | {first_run[1]:.0f} | |")
    save({"environment": environment(), "n": args.n, "first_auto_run": first_run, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
