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
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``command`` under /usr/bin/time; return (wall seconds, peak RSS in MB)."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        sys.exit(f"command failed: {' '.join(command)}\n{result.stderr}")
    wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss_kb) / 1024


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
    first_run = timed(auto(str(scratch / "out")), env)
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
            runs[name].append(timed(make(str(scratch / "out")), env))
            shutil.rmtree(scratch)

    rows = {
        name: {
            "median_s": statistics.median(t for t, _ in samples),
            "min_s": min(t for t, _ in samples),
            "max_s": max(t for t, _ in samples),
            "peak_rss_mb": max(m for _, m in samples),
            "runs": samples,
        }
        for name, samples in runs.items()
    }
    shutil.rmtree(cache)
    baseline = rows["plain PyTorch script"]["median_s"]
    print(f"| command (n={args.n}, {args.repeats} runs) | median s | min–max s | peak RSS MB | speed-up |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['median_s']:.2f} | {row['min_s']:.2f}–{row['max_s']:.2f} "
            f"| {row['peak_rss_mb']:.0f} | {baseline / row['median_s']:.2f}× |"
        )
    print(f"| gantool generate RUN, first run (measures auto) | {first_run[0]:.2f} | | {first_run[1]:.0f} | |")
    if args.json:
        environment = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            **{pkg: version(pkg) for pkg in ("torch", "onnxruntime", "numpy", "pillow", "gantool")},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"environment": environment, "n": args.n, "first_auto_run": first_run, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
