"""Which layers should stay FP32 in ``export --int8``? Each choice quantized, judged and timed.

For a trained run (the defaults: ``gantool train gan``, ``gantool train
cyclegan``) every variant of ``--int8-exclude`` (none, first, last,
first+last) is quantized with the export room's own code on the same seeded
calibration set, judged by the quality room against PyTorch FP32 (FID and KID
against the FP32 outputs, the verdict) and timed with onnxruntime on one
batch. ``--speed-only`` skips the verdict, for random-weight reference models
that have no data to be judged on.

    python benchmarks/scripts/int8_layers.py runs/cg --json benchmarks/results/int8_layers_cg.json
    python benchmarks/scripts/int8_layers.py runs/resnet9_128 --speed-only --batch 1
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from script_common import environment, save

from gantool.artifacts import onnx_path_for, run_checkpoints
from gantool.checkpoint import read_spec
from gantool.export.calibration import calibration_inputs
from gantool.export.int8 import quantize, resolve_exclusions, stamp
from gantool.export.interface import interface_for

VARIANTS = {"none": (), "first": ("first",), "last": ("last",), "first+last": ("first", "last")}


def median_ms(path: Path, name: str, batch: np.ndarray, runs: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, {name: batch})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: batch})
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="an exported run dir (gantool export)")
    parser.add_argument("--calib", type=int, default=128)
    parser.add_argument("--batch", type=int, default=None, help="timed batch (default: 64 for a GAN, 1 otherwise)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--n", type=int, default=1000, help="a GAN's verdict samples")
    parser.add_argument("--speed-only", action="store_true", help="no verdict (random-weight reference models)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from gantool.benchmarks.quality.judge import judge_file

    rows = []
    for checkpoint in run_checkpoints(args.run_dir):
        spec = read_spec(checkpoint)
        interface = interface_for(spec)
        fp32 = onnx_path_for(checkpoint, args.run_dir, "fp32")
        source = onnx.load(str(fp32))
        if args.speed_only:
            rng = np.random.default_rng(0)
            inputs = rng.uniform(-1, 1, (args.calib, spec.channels, spec.height, spec.width)).astype(np.float32)
        else:
            inputs, _ = calibration_inputs(spec, checkpoint, args.calib, None)
        batch = inputs[: args.batch or (64 if spec.latent_dim else 1)]
        fp32_ms = median_ms(fp32, interface.input_name, batch, args.runs)
        work = Path(tempfile.mkdtemp(prefix="int8_layers."))
        try:
            for variant, exclude in VARIANTS.items():
                kept = resolve_exclusions(source, exclude, fp32.name)
                model = quantize(fp32, interface, inputs, kept, work)
                stamp(model, source, {"kept_float": kept}, {"verdict": "not judged", "passed": False, "forced": True})
                path = work / onnx_path_for(checkpoint, work, "int8").name
                path.write_bytes(model.SerializeToString())
                row = {"model": checkpoint.name, "variant": variant, "kept_float": kept, "fp32_ms": fp32_ms}
                row["int8_ms"] = median_ms(path, interface.input_name, batch, args.runs)
                row["speedup"] = fp32_ms / row["int8_ms"]
                if not args.speed_only:
                    verdict = judge_file(checkpoint, path, "onnxruntime", n=args.n, echo=lambda _line: None)
                    row |= {key: verdict[key] for key in ("verdict", "fid_vs_fp32", "floor_fid", "kid_delta")}
                    row["fid_vs_real"], row["fid_vs_real_fp32"] = verdict["fid_vs_real"], verdict["fid_vs_real_fp32"]
                rows.append(row)
                judged = (
                    f"  FID vs FP32 {row['fid_vs_fp32']:.3g} (floor {row['floor_fid']:.3g})" if "verdict" in row else ""
                )
                print(f"{checkpoint.name:28s} {variant:10s} FP32 {fp32_ms:8.3f} ms  INT8 {row['int8_ms']:8.3f} ms "
                      f"({row['speedup']:.2f}x){judged}")  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
    save({"environment": environment(), "command": " ".join(sys.argv), "rows": rows}, args.json)


if __name__ == "__main__":
    main()
