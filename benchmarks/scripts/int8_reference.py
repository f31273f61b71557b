"""Write INT8 QDQ files for the random-weight reference translator, for timing only.

``gantool export --int8`` will not write an INT8 file it cannot judge, and a
random-weight reference translator (reference_translator.py) has no data to
judge it on. Its *speed* does not depend on the weights, so this script runs
the export room's own quantizer (export/int8.py: the same QDQ settings, the
same layer choice) on seeded smooth-noise calibration images and stamps each
file "not judged" and ``forced``: ``--backend auto`` never picks it,
``--precision int8`` runs it. Speed figures only; quality is measured on the
trained default models (RESULTS.md, "INT8 and bf16").

    python benchmarks/scripts/reference_translator.py runs/resnet9_128 --size 128
    gantool export runs/resnet9_128
    python benchmarks/scripts/int8_reference.py runs/resnet9_128
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx

from gantool.artifacts import DIRECTIONS, checkpoint_in, onnx_path_for
from gantool.checkpoint import read_spec
from gantool.export.int8 import quantize, stamp
from gantool.export.interface import interface_for
from gantool.files import atomic_write_bytes


def smooth_noise(count: int, channels: int, size: int, seed: int = 0) -> np.ndarray:
    """float32 N×C×H×W in [-1, 1]: coarse noise upsampled (image-like), as translate_vs_plain's inputs."""
    import torch

    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(-1, 1, (count, channels, size // 8, size // 8)).astype(np.float32))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic").clamp(-1, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a reference translator run dir, exported (gantool export)")
    parser.add_argument("--calib", type=int, default=32, help="calibration images (default 32)")
    args = parser.parse_args()
    for direction in DIRECTIONS:
        checkpoint = checkpoint_in(args.run_dir, direction)
        spec = read_spec(checkpoint)
        fp32, out = onnx_path_for(checkpoint, args.run_dir, "fp32"), onnx_path_for(checkpoint, args.run_dir, "int8")
        inputs = smooth_noise(args.calib, spec.channels, spec.height, seed=DIRECTIONS.index(direction))
        with tempfile.TemporaryDirectory() as work:
            model = quantize(fp32, interface_for(spec), inputs, [], Path(work))
        details = {"calibration": f"{args.calib} smooth-noise images", "kept_float": [], "source_onnx": fp32.name}
        verdict = {"verdict": "not judged: random weights, for timing only", "passed": False, "forced": True}
        stamp(model, onnx.load(str(fp32)), details, verdict)
        atomic_write_bytes(out, model.SerializeToString())
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; FP32 {fp32.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
