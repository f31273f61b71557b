"""End to end, process start to exit: `gantool translate RUN IMAGES` (auto) vs. the plain PyTorch script.

Both translate every image of IMAGES_DIR with the same CycleGAN generator
(RUN's a2b, or --direction) at its native size and write one PNG per image.
Each is run R times, alternating so that neither always runs on a warm page
cache, and timed with /usr/bin/time (wall seconds and peak RSS of the whole
process). gantool runs with a fresh cache folder: its first run measures
``auto`` and is reported on its own, the R timed runs use the cached choice
(what every later run on this machine does). The outputs are compared image
by image (max absolute pixel difference), so the two did the same job.

--make-images N first writes N seeded smooth-noise PNGs at the model's native
size into IMAGES_DIR (which must not exist), so the input is reproducible.
Prints a Markdown table and a JSON summary (--json also writes it).

    python benchmarks/scripts/translate_vs_plain.py runs/resnet9_128 /tmp/images --make-images 200 \
        --repeats 5 --json benchmarks/results/translate_vs_plain.json

``--precision int8`` runs gantool on the ``export --int8`` file (the max pixel
difference then measures what INT8 changed, not a bug).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from script_common import environment, print_speedups, save, summarize_runs, timed

from gantool.artifacts import checkpoint_in
from gantool.checkpoint import read_spec

HERE = Path(__file__).resolve().parent


def make_images(folder: Path, count: int, height: int, width: int, channels: int) -> None:
    """``count`` smooth-noise PNGs (low-resolution noise upsampled: image-like, not white noise), seeded."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    mode = "L" if channels == 1 else "RGB"
    for index in range(count):
        coarse = rng.integers(0, 256, (max(height // 8, 1), max(width // 8, 1), channels), dtype=np.uint8)
        image = Image.fromarray(coarse[:, :, 0] if channels == 1 else coarse, mode)
        image.resize((width, height), Image.Resampling.BICUBIC).save(folder / f"{index:05d}.png")


def max_pixel_difference(first: Path, second: Path) -> tuple[int, int]:
    """(largest |a − b| over every pixel of every image, number of images compared); exits if the sets differ."""
    names = sorted(path.name for path in first.glob("*.png"))
    if names != sorted(path.name for path in second.glob("*.png")):
        sys.exit(f"{first} and {second} hold different files")
    worst = 0
    for name in names:
        a = np.asarray(Image.open(first / name), dtype=np.int16)
        b = np.asarray(Image.open(second / name), dtype=np.int16)
        worst = max(worst, int(np.abs(a - b).max()))
    return worst, len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a CycleGAN run dir, exported (gantool export)")
    parser.add_argument("images", type=Path, help="a folder of images")
    parser.add_argument("--direction", default="a2b", choices=["a2b", "b2a"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--make-images", type=int, metavar="N", help="first write N smooth-noise PNGs into IMAGES")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--precision", help="pass --precision to gantool translate (e.g. int8: the export --int8 file)")
    args = parser.parse_args()

    checkpoint = checkpoint_in(args.run_dir, args.direction)
    spec = read_spec(checkpoint)
    if args.make_images:
        if args.images.exists():
            sys.exit(f"{args.images} exists: --make-images writes a new folder")
        make_images(args.images, args.make_images, spec.height, spec.width, spec.channels)
    scratch = Path(tempfile.mkdtemp(prefix="translate_vs_plain."))
    env = {**os.environ, "GANTOOL_CACHE_DIR": str(scratch / "cache")}  # auto measures on the first run only
    gantool_cmd = [sys.executable, "-m", "gantool", "translate", str(args.run_dir), str(args.images)]
    gantool_cmd += ["--direction", args.direction, "--force"]
    gantool_cmd += ["--precision", args.precision] if args.precision else []
    ours = f"gantool translate (auto{', ' + args.precision if args.precision else ''})"
    commands = {
        ours: lambda out: [*gantool_cmd, "--out", out],
        "plain PyTorch script": lambda out: [
            sys.executable,
            str(HERE / "plain_torch_translate.py"),
            str(checkpoint),
            str(args.images),
            out,
        ],
    }
    try:
        first_wall, first_rss, first_log = timed(commands[ours](str(scratch / "first")), env)
        backend = next((line for line in first_log.splitlines() if line.startswith("backend: ")), "")
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, make in commands.items():
                out = scratch / name.split()[0]
                shutil.rmtree(out, ignore_errors=True)
                wall, rss, _ = timed(make(str(out)), env)
                runs[name].append((wall, rss))
        worst, compared = max_pixel_difference(scratch / "gantool", scratch / "plain")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rows = summarize_runs(runs)
    count = len(list(args.images.iterdir()))
    print_speedups(rows, "plain PyTorch script", f"command ({count} images, {args.repeats} runs)")
    summary = {
        "environment": environment(),
        "command": " ".join(sys.argv),
        "model": str(checkpoint),
        "images": count,
        "size": [spec.height, spec.width],
        "gantool_backend": backend,
        "gantool_first_run": {"wall_s": first_wall, "peak_rss_mb": first_rss, "note": "measures auto, then caches"},
        "rows": rows,
        "speedup": rows["plain PyTorch script"]["median_s"] / rows[ours]["median_s"],
        "max_pixel_difference": worst,
        "images_compared": compared,
    }
    save(summary, args.json)


if __name__ == "__main__":
    main()
