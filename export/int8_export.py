"""``export --int8``: per checkpoint, quantize its FP32 export, check it, judge its quality, then write or refuse it.

The order makes "nothing half-written" hold for a file judged after it is
made: the INT8 model is written in a staging folder beside its destination
(under its final name, so the runtime loads it as it will be loaded later),
checked (onnx.checker, the I/O contract, onnxruntime against the FP32 export
on the parity inputs), judged by the quality room against PyTorch FP32, and
only then stamped with its verdict and renamed into place. A measurable loss
removes the staging folder and fails with the figures; ``--force-int8``
writes it anyway, its verdict marked ``forced`` (``auto`` never picks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from gantool.artifacts import onnx_path_for
from gantool.checkpoint import read_spec
from gantool.export.calibration import calibration_inputs
from gantool.export.int8 import Int8Result, Int8Settings, Staging, quantize, resolve_exclusions, stamp
from gantool.export.int8_report import format_layer_report, layer_report
from gantool.export.interface import GraphInterface, interface_for
from gantool.export.onnx_export import validate
from gantool.export.parity import max_abs_diff

Log = Callable[[str], None]


def export_int8(
    checkpoints: Sequence[Path], out_dir: Path, settings: Int8Settings, *, log: Log
) -> tuple[list[Int8Result], list[str]]:
    """Every checkpoint's ``<stem>.int8.onnx`` from its ``<stem>.onnx`` in ``out_dir``; the results and the refusals.

    A refusal (a measurable loss without ``--force-int8``) does not stop the other checkpoints: a CycleGAN run
    may keep one direction and refuse the other, and the caller fails the command after reporting both.
    """
    results: list[Int8Result] = []
    refused: list[str] = []
    for checkpoint in checkpoints:
        result = _export_one(checkpoint, out_dir, settings, log)
        results.append(result)
        if not result.ok:
            refused.append(f"{result.path.name}: {result.verdict['verdict']}")
    return results, refused


def _export_one(checkpoint: Path, out_dir: Path, settings: Int8Settings, log: Log) -> Int8Result:
    from gantool.benchmarks.quality.judge import judge_file

    spec = read_spec(checkpoint)
    interface = interface_for(spec)
    fp32, path = onnx_path_for(checkpoint, out_dir, "fp32"), onnx_path_for(checkpoint, out_dir, "int8")
    source = onnx.load(str(fp32), load_external_data=False)
    kept_float = resolve_exclusions(source, settings.exclude, fp32.name)
    inputs, described = calibration_inputs(spec, checkpoint, settings.calib, settings.calib_data, settings.seed)
    log(f"quantizing {fp32.name} → {path.name} (INT8 QDQ, calibrated on {described})")
    staging = Staging(path)
    try:
        model = quantize(fp32, interface, inputs, kept_float, staging.folder)
        details = {
            "calibration": described, "calibration_count": len(inputs), "method": "minmax, symmetric int8",
            "per_channel_weights": True, "kept_float": kept_float, "source_onnx": fp32.name,
        }  # fmt: skip
        stamp(model, source, details, {"verdict": "not judged yet", "passed": False, "forced": False})
        staging.file.write_bytes(model.SerializeToString())
        validate(staging.file, model, interface, "int8", path.name)
        diff = max_abs_diff(staging.file, interface, _fp32_outputs(fp32, interface))
        log(f"{path.name}: max abs diff vs the FP32 export {diff:.2e} (informative: the quality verdict decides)")
        layers = []
        if settings.report:
            layers = layer_report(fp32, staging.file, interface, inputs, kept_float, staging.folder)
            for line in format_layer_report(path, layers):
                log(line)
        verdict = judge_file(
            checkpoint, staging.file, "onnxruntime", n=settings.verdict_n, seed=settings.seed, label=str(path), echo=log
        )
        verdict["forced"] = not verdict["passed"] and settings.force
        stamp(model, source, details, verdict)
        result = Int8Result(path, diff, verdict, kept_float, described, layers)
        if result.ok:
            staging.file.write_bytes(model.SerializeToString())
            staging.commit()
            log(f"{path.name}: {'written, FORCED past a measurable loss' if verdict['forced'] else 'written'}")
        else:
            log(f"{path.name}: refused, not written ({verdict['verdict']}); --force-int8 writes it anyway")
        return result
    finally:
        staging.close()


def _fp32_outputs(fp32: Path, interface: GraphInterface) -> list[np.ndarray]:
    """The FP32 export's outputs on the parity inputs: what the INT8 file is compared with."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(fp32), options, providers=["CPUExecutionProvider"])
    return [session.run([interface.output_name], {interface.input_name: x})[0] for x in interface.parity_inputs]
