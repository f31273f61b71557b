"""``--int8-report``: where INT8 costs precision, layer by layer, measured with onnxruntime's own QDQ debugger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from gantool.export.int8 import calibration_reader, quantizable_nodes
from gantool.export.interface import GraphInterface

REPORT_INPUTS = 32  # calibration inputs the report runs: every intermediate tensor of both models is kept for each


def layer_report(
    fp32: Path, qdq: Path, interface: GraphInterface, inputs: np.ndarray, kept_float: list[str], work: Path
) -> list[dict[str, Any]]:
    """``--int8-report``: per quantizable layer, how much quantization costs there, in dB of SQNR (higher is better).

    onnxruntime's own QDQ debugging tool (``onnxruntime.quantization.qdq_loss_debug``) on up to REPORT_INPUTS
    calibration inputs: each model is run with every intermediate tensor as an output, and for each
    layer three signal-to-quantization-noise ratios are read:

    - ``weight_sqnr_db``: its INT8 weights against the FP32 ones;
    - ``input_sqnr_db``: its quantized input against the same tensor before quantization (the noise this
      layer's own input scale adds);
    - ``output_sqnr_db``: its output in the INT8 model against the FP32 model's (all the noise so far).

    A layer whose input or weight SQNR is far below the others is the one to try in FP32 (``--int8-exclude``).
    """
    from onnxruntime.quantization import qdq_loss_debug as debug

    from gantool.export.onnx_export import quiet

    sample = inputs[:REPORT_INPUTS]
    model = onnx.load(str(fp32), load_external_data=False)
    with quiet():
        float_aug, qdq_aug = work / "float_aug.onnx", work / "qdq_aug.onnx"
        debug.modify_model_output_intermediate_tensors(str(fp32), str(float_aug))
        debug.modify_model_output_intermediate_tensors(str(qdq), str(qdq_aug))
        float_acts = debug.collect_activations(str(float_aug), calibration_reader(interface.input_name, sample))
        qdq_acts = debug.collect_activations(str(qdq_aug), calibration_reader(interface.input_name, sample))
        activations = debug.compute_activation_error(debug.create_activation_matching(qdq_acts, float_acts))
        weights = debug.compute_weight_error(debug.create_weight_matching(str(fp32), str(qdq)))
    rows = []
    for node in quantizable_nodes(model):
        data, weight = node.input[0], node.input[1] if len(node.input) > 1 else ""
        rows.append(
            {
                "layer": node.name,
                "op": node.op_type,
                "int8": node.name not in kept_float,
                "weight_sqnr_db": _finite(weights.get(weight)),
                "input_sqnr_db": _finite(activations.get(data, {}).get("qdq_err")),
                "output_sqnr_db": _finite(activations.get(node.output[0], {}).get("xmodel_err")),
            }
        )
    return rows


def format_layer_report(path: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The report as aligned text lines, worst input SQNR marked."""
    header = ("layer", "op", "precision", "weight SQNR dB", "input SQNR dB", "output SQNR dB")
    table = [header] + [
        (row["layer"], row["op"], "int8" if row["int8"] else "fp32", _db(row["weight_sqnr_db"]),
         _db(row["input_sqnr_db"]), _db(row["output_sqnr_db"]))
        for row in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [f"{path.name}: per-layer INT8 sensitivity (SQNR, higher is better)"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]
    return lines


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
