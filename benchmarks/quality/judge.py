"""One exported file against its checkpoint: ``gantool eval``'s verdict, as a record the file can carry.

``export --int8`` asks this before an INT8 file may exist: the same inputs
(latents of one seed, or the source domain's test split) through PyTorch FP32
on the checkpoint and through the candidate file, both judged as ``gantool
eval --backends`` judges (evaluate.py: the candidate's distance to the FP32
outputs against the FP32-vs-FP32 floor on independent inputs, and its
distance to real data). The record is what ``--backend auto`` later reads
from the file before it may pick that precision: the verdict, the figures
behind it, the extractor and the checkpoint it was measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gantool.benchmarks.quality.evaluate import KID_SIGMAS, REFERENCE, Evaluation, Runner
from gantool.errors import GantoolError


def judge_file(
    checkpoint: Path, candidate: Path, backend: str, *, n: int, seed: int = 0, label: str | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """The verdict on ``candidate`` (an exported file run on ``backend``) against ``checkpoint`` in PyTorch FP32.

    ``label`` names the candidate in the printed evaluation (a staged file is shown under its final name).

    ``passed`` is False only for a measurable loss: outputs measurably different from FP32's *and*
    further from real data (as ``--quality-check`` fails a file).
    """
    from gantool.benchmarks.quality.extractors import default_extractor, open_extractor
    from gantool.benchmarks.quality.features import FeatureReader
    from gantool.benchmarks.quality.report import format_evaluation
    from gantool.checkpoint import read_spec
    from gantool.files import sha256_file

    spec = read_spec(checkpoint)
    extractor = open_extractor(default_extractor(spec))
    reader = FeatureReader(extractor)
    evaluation = _evaluate(checkpoint, candidate, backend, spec, reader, n, seed)
    evaluation.model = label or str(candidate)
    echo(format_evaluation(evaluation))
    if len(evaluation.verdicts) != 1:
        raise GantoolError(f"internal: expected one verdict on {candidate.name}, got {len(evaluation.verdicts)}")
    found = evaluation.verdicts[0]
    by_role = {(row["kind"], row["against"], row.get("backend"), row.get("precision")): row for row in evaluation.rows}
    fp32_real = by_role[("model", "real", *REFERENCE)]
    candidate_real = by_role[("model", "real", found["backend"], found["precision"])]
    versus = by_role[("model", "fp32 torch", found["backend"], found["precision"])]
    floor = next(row for row in evaluation.rows if row["kind"] == "floor" and row["against"] == "fp32 torch")
    return {
        "verdict": found["verdict"],
        "passed": not found["worse"],
        "measurable": found["measurable"],
        "forced": False,
        "reference": "torch fp32 on cpu",
        "checkpoint_sha256": sha256_file(checkpoint),
        "extractor": extractor.name,
        "extractor_sha256": extractor.sha256,
        "n": versus["n"],
        "seed": seed,
        "fid_vs_fp32": versus["fid"],
        "floor_fid": floor["fid"],
        "kid_vs_fp32": versus["kid"],
        "kid_limit": floor["kid"] + KID_SIGMAS * floor["kid_std"],
        "fid_vs_real": candidate_real["fid"],
        "fid_vs_real_fp32": fp32_real["fid"],
        "kid_delta": candidate_real["kid"] - fp32_real["kid"],
    }


def _evaluate(checkpoint: Path, candidate: Path, backend: str, spec: Any, reader: Any, n: int, seed: int) -> Evaluation:
    """PyTorch FP32 on the checkpoint, then the candidate file, through evaluate.py's generator or translator path."""
    from gantool.benchmarks.quality import real_data
    from gantool.benchmarks.quality.evaluate import evaluate_samples, evaluate_translations
    from gantool.runtime.generator import Generator
    from gantool.runtime.translator import Translator

    gan = spec.latent_dim is not None
    kind: Any = Generator if gan else Translator
    evaluation = Evaluation(str(candidate), spec.direction)
    runners = [_runner(kind, checkpoint, *REFERENCE, "cpu"), _runner(kind, candidate, backend, None, "auto")]
    if gan:
        real = real_data.generator_real(checkpoint, spec, None)
        labelled = real_data.digits_test_reference() if spec.provenance.get("dataset") == real_data.DIGITS else real
        evaluate_samples(evaluation, runners, reader, real, n, seed, lambda s, count: (s, count), labelled)
        return evaluation
    domain_a, domain_b = real_data.cyclegan_domains(checkpoint, spec, None)
    source, target = (domain_b, domain_a) if spec.direction == "b2a" else (domain_a, domain_b)
    pairs: list[tuple[Runner, Runner | None]] = [(runner, None) for runner in runners]
    evaluate_translations(evaluation, pairs, reader, (source.test, source.train), (target.test, target.train), seed)
    return evaluation


def _runner(kind: Any, path: Path, backend: str, precision: str | None, device: str) -> Runner:
    loaded = kind.open(path, backend, device=device, precision=precision)
    if hasattr(loaded, "sample"):
        outputs = lambda latents: loaded.sample(latents[1], seed=latents[0], batch_size=64)
    else:
        outputs = lambda images: loaded.translate(images, batch_size=64)
    return Runner(loaded.backend, loaded.precision, loaded.device, outputs, loaded.reason)
