"""What ``gantool eval`` measures: rows of distances between feature sets, each beside its noise floor.

A row compares a candidate set (samples, translations) with a reference set
(real images, or the FP32 PyTorch outputs on the same inputs). FID is biased
upward at small N, so a number means something only next to another taken at
the same N: every report carries a floor row at the N of the rows it judges:

- against real data: two disjoint sets of real images (a generator: the real
  set split in halves; a translator: the target domain's test images against
  as many of its training images);
- against the FP32 PyTorch outputs: two independent output sets of that same
  model (other latents; other input images of the same domain).

A backend and precision whose outputs sit closer to the FP32 outputs than a
resampled FP32 set does is "no measurable loss" at this N; otherwise the
report says how much worse it is against real data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gantool.benchmarks.quality import classes
from gantool.benchmarks.quality.features import FeatureReader
from gantool.benchmarks.quality.metrics import compare
from gantool.benchmarks.quality.real_data import RealSet
from gantool.errors import GantoolError

REFERENCE = ("torch", "fp32")  # every backend × precision is judged against PyTorch FP32 on the CPU
# Row keys of the scores: precision/recall renamed, so that "precision" stays the numeric precision (fp32, fp16).
SCORE_KEYS = {"kid_mean": "kid", "precision": "pr_precision", "recall": "pr_recall", "n_a": "n_reference", "n_b": "n"}
KID_SIGMAS = 2.0  # a KID above the floor by more than this many of the floor's standard deviations is a loss


@dataclass(frozen=True)
class Runner:
    """One backend × precision × device of one model: ``outputs(inputs)`` gives uint8 images."""

    backend: str
    precision: str
    device: str
    outputs: Callable[[Any], np.ndarray]
    reason: str = ""


@dataclass
class Evaluation:
    """The rows, classifier summaries, verdicts and notes of one model's evaluation."""

    model: str
    direction: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    classifier: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add_row(
        self, what: str, against: str, candidate: np.ndarray, reference: np.ndarray, seed: int, **extra: Any
    ) -> dict[str, Any]:
        """Score ``candidate`` features against ``reference`` features and keep the row."""
        scores = compare(reference, candidate, seed=seed)
        row = {"model": self.model, "direction": self.direction, "set": what, "against": against}
        row.update(extra)
        row.update({SCORE_KEYS.get(key, key): value for key, value in scores.as_dict().items()})
        self.rows.append(row)
        return row


def other_seed(seed: int) -> int:
    """A second seed for the independent sample set: the next one, or the previous one at the top of the range."""
    from gantool.latents import MAX_SEED

    return seed + 1 if seed < MAX_SEED else seed - 1


def real_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint seeded halves of ``count`` real images: the reference half, and the floor's half."""
    order = np.random.default_rng(seed).permutation(count)
    half = count // 2
    return order[:half], order[half : 2 * half]


def verdict(
    vs_reference: dict[str, Any], floor: dict[str, Any], vs_real: dict[str, Any], real_ref: dict[str, Any]
) -> str:
    """ "no measurable loss" when the outputs moved less than resampling moves them; else how much worse vs real."""
    kid_limit = floor["kid"] + KID_SIGMAS * floor["kid_std"]
    fid_within, kid_within = vs_reference["fid"] <= floor["fid"], vs_reference["kid"] <= kid_limit
    if fid_within and kid_within:
        return (
            f"no measurable loss: FID vs FP32 {vs_reference['fid']:.3g} ≤ floor {floor['fid']:.3g}, "
            f"KID {vs_reference['kid']:.3g} ≤ {kid_limit:.3g}"
        )
    change = vs_real["fid"] - real_ref["fid"]
    relative = f" ({change / real_ref['fid']:+.1%})" if real_ref["fid"] > 0 else ""
    fid_side = "≤" if fid_within else ">"
    beyond = "" if kid_within else f", KID {vs_reference['kid']:.3g} > {kid_limit:.3g}"  # the FID alone may pass
    return (
        f"measurably different: FID vs FP32 {vs_reference['fid']:.3g} {fid_side} floor {floor['fid']:.3g}{beyond}; "
        f"FID vs real {real_ref['fid']:.3g} → {vs_real['fid']:.3g}{relative}"
    )


def evaluate_samples(
    evaluation: Evaluation,
    runners: list[Runner],
    reader: FeatureReader,
    real: RealSet,
    n: int,
    seed: int,
    latents: Callable[[int, int], Any],
    classifier_reference: RealSet | None,
) -> None:
    """A generator: N samples per runner against real data; with several runners, each against FP32 torch too.

    ``latents(seed, n)`` gives a runner's input; samples 0..n-1 of one seed
    are the same latents on every backend, so the FP32 comparison is image
    for image. The real set is split in halves so the floor is at the same N.
    """
    keep, floor_index = real_split(len(real.pixels), seed)
    count = min(n, len(floor_index))
    if count < n:
        evaluation.notes.append(
            f"distances use N = {count}: half of the {len(real.pixels)} real images, so that the real-vs-real "
            f"floor is measured at the same N (classifier figures use all {n} samples)"
        )
    real_features = reader.features(real.pixels, real.name, cache=True)
    reference, floor_set = real_features[keep], real_features[floor_index[:count]]
    floor_real = evaluation.add_row("real (other half)", "real", floor_set, reference, seed, kind="floor")
    if classifier_reference is not None:
        _classify(
            evaluation, reader, classifier_reference.pixels, classifier_reference.name, classifier_reference.labels
        )
    outputs: dict[tuple[str, str, str], np.ndarray] = {}
    for runner in runners:
        pixels = runner.outputs(latents(seed, n))
        outputs[(runner.backend, runner.precision, runner.device)] = reader.features(pixels, _label(runner))
        row = evaluation.add_row(
            "samples", "real", outputs[(runner.backend, runner.precision, runner.device)][:count], reference, seed,
            kind="model", backend=runner.backend, precision=runner.precision, device=runner.device,
        )  # fmt: skip
        row["vs_floor"] = row["fid"] - floor_real["fid"]
        _classify(evaluation, reader, pixels, _label(runner), None, runner)
    if len(runners) > 1:
        _judge_backends(
            evaluation, runners, reader, outputs, count, seed, lambda: runners[0].outputs(latents(other_seed(seed), n))
        )


def evaluate_translations(
    evaluation: Evaluation,
    runners: list[tuple[Runner, Runner | None]],
    reader: FeatureReader,
    source: tuple[RealSet, RealSet],
    target: tuple[RealSet, RealSet],
    seed: int,
) -> None:
    """One translator direction: the source test split translated, against the target test split.

    ``runners`` pairs each runner with the opposite direction's (same backend
    and precision, None when it is missing) for the cycle reconstruction. The
    floor is the target's test images against as many of its training images.
    """
    source_test, source_train = source
    target_test, target_train = target
    count = len(source_test.pixels)
    reference = reader.features(target_test.pixels, target_test.name, cache=True)
    pick = np.random.default_rng(seed).permutation(len(target_train.pixels))[:count]
    floor_features = reader.features(target_train.pixels, target_train.name, cache=True)[pick]
    floor_real = evaluation.add_row(target_train.name, "real", floor_features, reference, seed, kind="floor")
    _classify(evaluation, reader, source_test.pixels, source_test.name, source_test.labels)
    outputs: dict[tuple[str, str, str], np.ndarray] = {}
    for runner, back in runners:
        translated = runner.outputs(source_test.pixels)
        key = (runner.backend, runner.precision, runner.device)
        outputs[key] = reader.features(translated, _label(runner))
        row = evaluation.add_row(
            "translations", "real", outputs[key], reference, seed,
            kind="model", backend=runner.backend, precision=runner.precision, device=runner.device,
        )  # fmt: skip
        row["vs_floor"] = row["fid"] - floor_real["fid"]
        summary = _classify(evaluation, reader, translated, _label(runner), source_test.labels, runner)
        if back is None:
            continue
        reconstructed = back.outputs(translated)
        error = np.abs(reconstructed.astype(np.float64) - source_test.pixels.astype(np.float64))
        row["cycle_mae"] = float(error.mean())  # in pixel levels, 0..255
        mse = float((error**2).mean())
        row["cycle_psnr"] = float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
        if summary is not None and source_test.labels is not None:
            summary["cycle_keeps_label"] = classes.agreement(reader, reconstructed, source_test.labels)
    if len(runners) > 1:
        plain = [runner for runner, _ in runners]
        _judge_backends(
            evaluation, plain, reader, outputs, count, seed, lambda: plain[0].outputs(source_train.pixels[:count])
        )


def _judge_backends(
    evaluation: Evaluation,
    runners: list[Runner],
    reader: FeatureReader,
    outputs: dict[tuple[str, str, str], np.ndarray],
    count: int,
    seed: int,
    independent: Callable[[], np.ndarray],
) -> None:
    """Each runner's outputs against the FP32 torch outputs on the same inputs, beside the model-vs-model floor."""
    first = runners[0]
    if (first.backend, first.precision) != REFERENCE:
        raise GantoolError("internal: the first runner of a backend comparison must be torch fp32")
    reference = outputs[(first.backend, first.precision, first.device)][:count]
    floor_features = reader.features(independent(), f"{_label(first)}, independent inputs")[:count]
    floor = evaluation.add_row(
        "FP32 torch, independent inputs", "fp32 torch", floor_features, reference, seed, kind="floor"
    )
    real_rows = {
        (r.get("backend"), r.get("precision"), r.get("device")): r for r in evaluation.rows if r["kind"] == "model"
    }
    reference_real = real_rows[(first.backend, first.precision, first.device)]
    for runner in runners[1:]:
        key = (runner.backend, runner.precision, runner.device)
        row = evaluation.add_row(
            "outputs", "fp32 torch", outputs[key][:count], reference, seed,
            kind="model", backend=runner.backend, precision=runner.precision, device=runner.device,
        )  # fmt: skip
        found = verdict(row, floor, real_rows[key], reference_real)
        different = not found.startswith("no measurable")
        evaluation.verdicts.append(
            {"backend": runner.backend, "precision": runner.precision, "device": runner.device, "verdict": found,
             "measurable": different, "worse": different and real_rows[key]["fid"] > reference_real["fid"]}
        )  # fmt: skip


def _classify(
    evaluation: Evaluation,
    reader: FeatureReader,
    pixels: np.ndarray,
    label: str,
    labels: np.ndarray | None,
    runner: Runner | None = None,
) -> dict[str, Any] | None:
    """The classifier's reading of a set (digits extractor only), kept in ``evaluation.classifier``."""
    probabilities = reader.probabilities(pixels, label)
    if probabilities is None:
        return None
    summary = {"set": label, **classes.summarise(probabilities, labels)}
    if runner is not None:
        summary.update(backend=runner.backend, precision=runner.precision, device=runner.device)
    evaluation.classifier.append(summary)
    return summary


def _label(runner: Runner) -> str:
    return f"{runner.backend} {runner.precision} {runner.device}"


def model_name(path: Path, direction: str | None) -> str:
    return f"{path}" + (f" ({direction})" if direction else "")
