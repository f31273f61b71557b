"""What ``gantool translate --reduced-jpeg`` costs in fidelity and buys in speed.

For JPEGs of several sizes, decode each to the model's input (256×256 by
default) twice, with gantool's own reader: the default full decode (the
reference's pixels) and the reduced-scale decode (Pillow's ``draft``). Reports
the difference of the two network inputs in 8-bit levels (max, mean, share of
pixels off by more than 1) and the median read time of each.

The photos are scikit-learn's two bundled ones (427×640), upscaled with
Lanczos and saved at quality 90: smoother than a real large photo, so the
differences here are a lower bound on what fine detail would show.

    python benchmarks/scripts/reduced_jpeg.py --json benchmarks/results/reduced_jpeg.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from script_common import environment, save
from sklearn.datasets import load_sample_image

from gantool.runtime.image_io import Decoding, read_image

WIDTHS = (640, 1280, 2560, 5120)


def read_time(path: Path, decoding: Decoding, repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds of ``read_image`` over ``repeats`` runs, and its pixels."""
    times, pixels = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        pixels = read_image(path, 3, decoding)
        times.append(time.perf_counter() - start)
    assert pixels is not None
    return statistics.median(times), pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="the model's side the photos are resized to")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    target = (args.size, args.size)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in ("china.jpg", "flower.jpg"):
            source = Image.fromarray(load_sample_image(name))
            for width in WIDTHS:
                height = round(width * source.height / source.width)
                path = Path(folder) / f"{width}-{name}"
                source.resize((width, height), Image.Resampling.LANCZOS).save(path, quality=90)
                full_s, full = read_time(path, Decoding(target), args.repeats)
                reduced_s, reduced = read_time(path, Decoding(target, reduced_jpeg=True), args.repeats)
                difference = np.abs(full.astype(int) - reduced.astype(int))
                rows.append(
                    {
                        "photo": name, "width": width, "height": height,
                        "max_levels": int(difference.max()), "mean_levels": round(float(difference.mean()), 3),
                        "share_over_1": round(float((difference > 1).mean()), 4),
                        "full_ms": round(full_s * 1e3, 2), "reduced_ms": round(reduced_s * 1e3, 2),
                        "speedup": round(full_s / reduced_s, 2),
                    }
                )  # fmt: skip
    print("| photo | size | max levels | mean levels | share > 1 level | full ms | reduced ms | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['photo']} | {row['width']}×{row['height']} | {row['max_levels']} | {row['mean_levels']} "
            f"| {row['share_over_1']:.1%} | {row['full_ms']} | {row['reduced_ms']} | {row['speedup']}× |"
        )
    save({"environment": environment(), "size": args.size, "repeats": args.repeats, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
