"""Evaluate a model from Python: the backends × precisions to run, each loaded through the runtime's public API.

``gantool eval``, ``gantool export --quality-check`` and training's
``--eval-every`` all come here: ``evaluate_model`` opens MODEL on each
backend × precision that loads (one that does not gets a note, not a failure)
and runs the generator or translator evaluation of ``evaluate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gantool.artifacts import DIRECTIONS
from gantool.benchmarks.quality.evaluate import REFERENCE, Evaluation, Runner
from gantool.benchmarks.quality.features import FeatureReader
from gantool.errors import GantoolError, UsageError
from gantool.spec import ModelSpec


def backend_combos(names: list[str], precisions: list[str]) -> list[tuple[str, str]]:
    """Each backend × each precision; with more than one, PyTorch FP32 first: the one the others are judged by."""
    combos = [(name, precision) for name in names for precision in precisions]
    if len(combos) > 1 and combos[0] != REFERENCE:
        combos = [REFERENCE] + [combo for combo in combos if combo != REFERENCE]
    return combos


def evaluate_model(
    model: Path, spec: ModelSpec, reader: FeatureReader, combos: list[tuple[str, str]], *, device: str = "auto",
    real: Path | None = None, n: int = 1000, seed: int = 0, batch_size: int = 64, direction: str | None = None,
) -> list[Evaluation]:  # fmt: skip
    """MODEL's evaluation: one for a generator, one per direction for a CycleGAN run dir (or ``direction``)."""
    if spec.latent_dim is not None:
        if direction is not None:
            raise UsageError(f"--direction applies to CycleGAN translators only: {model} is a GAN generator")
        return [_evaluate_generator(model, spec, combos, device, reader, real, n, seed, batch_size)]
    return _evaluate_translator(model, spec, combos, device, reader, real, direction, seed, batch_size)


def model_spec(model: Path, direction: str | None) -> ModelSpec:
    """MODEL's spec from its artifact (a run dir's checkpoint for the direction asked, or a2b).

    Read from the checkpoint's header, the ONNX metadata or the engine's sidecar, as ``bench`` peeks: loading
    through ``auto`` would time the backends against each other just to learn the spec. A ``direction`` that
    contradicts MODEL (a GAN, or the other translator's file) is a usage error.
    """
    from gantool.artifacts import checkpoint_in
    from gantool.runtime import registry
    from gantool.runtime.api import load_model
    from gantool.runtime.backends.base import check_direction

    wanted = direction or _default_direction(model)
    if (
        wanted is not None
        and model.is_dir()
        and checkpoint_in(model).is_file()
        and not checkpoint_in(model, wanted).is_file()
    ):
        wanted = None  # a GAN run dir: its own spec, so that check_direction refuses --direction
    for name in ("torch", "onnxruntime", "tensorrt"):
        backend = registry.backend_class(name)
        try:
            artifact = backend.resolve(model, wanted)
            spec = backend.peek_spec(artifact)
        except GantoolError:
            continue
        if spec is not None:
            check_direction(spec, artifact, direction)
            return spec
    return load_model(model, "auto", device="cpu", direction=wanted).spec


def _default_direction(model: Path) -> str | None:
    from gantool.artifacts import checkpoint_in

    if model.is_dir() and not checkpoint_in(model).is_file() and checkpoint_in(model, "a2b").is_file():
        return "a2b"
    return None


def _open_runners(
    kind: type, model: Path, combos: list[tuple[str, str]], device: str, direction: str | None, notes: list[str],
    batch_size: int,
) -> list[Runner]:  # fmt: skip
    """Each backend × precision that loads here; one that does not gets a note saying why, not a failure."""
    from gantool.benchmarks.quality.evaluate import Runner

    runners = []
    for backend, precision in combos:
        wanted_device = "cpu" if (backend, precision) == REFERENCE and len(combos) > 1 else device
        try:
            loaded = kind.open(model, backend, device=wanted_device, precision=precision, direction=direction)
        except GantoolError as exc:
            notes.append(f"{backend} {precision}: skipped ({exc})")
            continue
        same = (loaded.backend, loaded.precision, loaded.device)
        if any((r.backend, r.precision, r.device) == same for r in runners):  # auto can pick one already asked for
            notes.append(f"{backend} {precision}: skipped (it is {' '.join(same)}, already evaluated)")
            continue
        outputs = _sampler(loaded, batch_size) if hasattr(loaded, "sample") else _translator(loaded, batch_size)
        runners.append(Runner(loaded.backend, loaded.precision, loaded.device, outputs, loaded.reason))
    if not runners:
        raise GantoolError(f"no backend could run {model}: {'; '.join(notes)}")
    return runners


def _sampler(generator: Any, batch_size: int) -> Any:
    return lambda latents: generator.sample(latents[1], seed=latents[0], batch_size=batch_size)


def _translator(translator: Any, batch_size: int) -> Any:
    return lambda images: translator.translate(images, batch_size=batch_size)


def _evaluate_generator(
    model: Path, spec: ModelSpec, combos: list[tuple[str, str]], device: str, reader: FeatureReader,
    real: Path | None, n: int, seed: int, batch_size: int,
) -> Evaluation:  # fmt: skip
    from gantool.benchmarks.quality.evaluate import Evaluation, evaluate_samples
    from gantool.benchmarks.quality.real_data import DIGITS, digits_test_reference, generator_real
    from gantool.runtime.generator import Generator

    evaluation = Evaluation(str(model), None)
    runners = _open_runners(Generator, model, combos, device, None, evaluation.notes, batch_size)
    real_set = generator_real(model, spec, real)
    reference = digits_test_reference() if real is None and spec.provenance.get("dataset") == DIGITS else real_set
    evaluate_samples(evaluation, runners, reader, real_set, n, seed, lambda s, count: (s, count), reference)
    return evaluation


def _evaluate_translator(
    model: Path, spec: ModelSpec, combos: list[tuple[str, str]], device: str, reader: FeatureReader,
    real: Path | None, direction: str | None, seed: int, batch_size: int,
) -> list[Evaluation]:  # fmt: skip
    from gantool.benchmarks.quality.evaluate import Evaluation, evaluate_translations
    from gantool.benchmarks.quality.real_data import cyclegan_domains
    from gantool.runtime.translator import Translator

    domain_a, domain_b = cyclegan_domains(model, spec, real)
    in_run_dir = model.is_dir()
    evaluations = []
    for wanted in [direction] if direction else (list(DIRECTIONS) if in_run_dir else [spec.direction or "a2b"]):
        evaluation = Evaluation(str(model), wanted)
        path_direction = wanted if in_run_dir else None
        runners = _open_runners(Translator, model, combos, device, path_direction, evaluation.notes, batch_size)
        backs: list[Runner | None] = [None] * len(runners)
        if in_run_dir:
            other = DIRECTIONS[1 - DIRECTIONS.index(wanted)]
            opened = _open_runners(Translator, model, combos, device, other, [], batch_size)
            by_key = {(r.backend, r.precision, r.device): r for r in opened}
            backs = [by_key.get((r.backend, r.precision, r.device)) for r in runners]
        else:
            evaluation.notes.append("one translator file: no cycle reconstruction (give the run dir for both)")
        source, target = (domain_a, domain_b) if wanted == "a2b" else (domain_b, domain_a)
        evaluate_translations(
            evaluation,
            list(zip(runners, backs)),
            reader,
            (source.test, source.train),
            (target.test, target.train),
            seed,
        )
        evaluations.append(evaluation)
    return evaluations
