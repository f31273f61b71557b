"""``gantool export --quality-check N``: do the files just exported keep the checkpoint's quality?

Parity (max abs error) says each output is close to PyTorch's; it does not
say whether the distribution of outputs moved measurably. This runs
``gantool eval``'s backend comparison on the new files (PyTorch FP32, then
onnxruntime FP32 and FP16, then the TensorRT engine when one was built): the
same latents, or the same test images, through each, every one judged against
the FP32 PyTorch outputs beside the model-vs-model noise floor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gantool.benchmarks.quality.evaluate import Evaluation
from gantool.benchmarks.quality.extractors import default_extractor, open_extractor
from gantool.benchmarks.quality.features import FeatureReader
from gantool.benchmarks.quality.report import format_evaluation
from gantool.benchmarks.quality.run import evaluate_model, model_spec

EXPORTED = [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "fp16")]


def quality_check(
    model: Path, n: int, *, engines: bool, device: str = "auto", seed: int = 0, echo: Callable[[str], None] = print
) -> list[str]:
    """The verdicts that failed (empty: every new file keeps the quality), each evaluation echoed as it finishes.

    A file fails when its outputs are measurably different from PyTorch FP32's and
    further from real data; one measurably different but closer to it is not a loss.

    A file that was just written but does not load is a failure too: the check
    must not pass because it could not look.
    """
    spec = model_spec(model, None)
    reader = FeatureReader(open_extractor(default_extractor(spec)))
    combos = EXPORTED + ([("tensorrt", "fp16")] if engines else [])
    failures: list[str] = []
    for evaluation in evaluate_model(model, spec, reader, combos, device=device, n=n, seed=seed):
        echo(format_evaluation(evaluation))
        failures += _failures(evaluation, len(combos))
    return failures


def _failures(evaluation: Evaluation, expected: int) -> list[str]:
    where = evaluation.model + (f" {evaluation.direction}" if evaluation.direction else "")
    found = [f"{where}: {v['backend']} {v['precision']}: {v['verdict']}" for v in evaluation.verdicts if v["worse"]]
    if len(evaluation.verdicts) < expected - 1:
        skipped = "; ".join(note for note in evaluation.notes if "skipped" in note)
        found.append(f"{where}: not every exported file could be checked ({skipped or 'see the notes'})")
    return found
