"""``--backend auto`` among several candidates: the fastest on this machine, for this model, at this batch size.

No rule of thumb survives every model and machine (onnxruntime beats torch
eager on the MLP on a 2-core CPU by 2×, by 1.2× on a ResNet, and a GPU may
lose to the CPU at batch 1), so ``auto`` measures: each candidate is loaded
and timed end to end (``run``: host inputs in, host images out) at the job's
batch size with ``gantool.timing.time_runs`` on a short budget, in two
interleaved rounds, and the lowest median wins. The figures are cached per machine and model, so only the
first job on a new machine, a new model or a new batch size pays for them:

- the machine is its fingerprint (CPU model and cores, GPUs, Python, the
  versions of torch, onnxruntime, TensorRT and gantool): a new driver stack or
  a new gantool measures again;
- the model is the sha256 of every artifact a candidate loads (checkpoint,
  ONNX, engine): retraining or re-exporting measures again.

The cache itself is runtime/autocache.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from gantool.errors import GantoolError, UsageError
from gantool.runtime import registry
from gantool.runtime.autocache import Figure, cache_file, cached, store
from gantool.runtime.backends.base import Backend
from gantool.runtime.gpu import GpuScan
from gantool.spec import ModelSpec

ROUNDS, WARMUP_S, MAX_S, MIN_RUNS, INPUT_VARIANTS = 2, 0.05, 0.15, 2, 3  # per candidate and round
GAN_BATCH, TRANSLATOR_BATCH = 64, 1  # what batch_size=None stands for: generate's default; one image at a time


def label(choice: registry.Choice) -> str:
    """The cache's name for a candidate: ``onnxruntime/cpu/fp32``."""
    return f"{choice.name}/{choice.device}/{choice.precision}"


def pick(
    model: Path,
    direction: str | None,
    candidates: list[registry.Choice],
    batch_size: int | None,
    scan: GpuScan,
) -> registry.Choice:
    """The fastest of ``candidates`` at ``batch_size``, from the cache or measured now (and then cached).

    A candidate that fails to load or run is dropped and named in the reason;
    the winner comes back loaded in ``Choice.backend`` whenever it had to be
    loaded here. ``scan`` is the GPU scan the candidates were found with.
    """
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"batch_size must be ≥ 1, got {batch_size}")
    failed: dict[str, str] = {}
    artifacts: dict[str, Path] = {}
    for choice in candidates:
        backend_class = registry.backend_class(choice.name)
        try:
            artifacts[label(choice)] = backend_class.resolve(model, direction, choice.precision)
        except GantoolError as exc:
            failed[label(choice)] = _first_line(exc)
    loaded: dict[str, Backend] = {}
    batch = batch_size or _default_batch(model, direction, candidates, artifacts, loaded, failed)
    cache = cache_file(artifacts)
    figures = cached(cache, batch, [label(c) for c in candidates if label(c) not in failed])
    fresh = figures is None
    if figures is None:
        figures = _measure(model, direction, candidates, batch, loaded, failed)
        store(cache, batch, figures)
    if not figures:
        raise GantoolError(
            f"no backend could run {model}: " + "; ".join(f"{name}: {why}" for name, why in failed.items())
        )
    ranked = sorted((c for c in candidates if label(c) in figures), key=lambda c: figures[label(c)].p50_ms)
    winner = ranked[0]
    reason = _reason(winner, ranked, figures, batch, fresh, failed, registry.cpu_note(scan))
    return replace(winner, reason=reason, backend=loaded.get(label(winner)))


def _default_batch(
    model: Path,
    direction: str | None,
    candidates: list[registry.Choice],
    artifacts: dict[str, Path],
    loaded: dict[str, Backend],
    failed: dict[str, str],
) -> int:
    """64 for a GAN, 1 for a translator: the kind read from an artifact's header, else from loading one."""
    spec: ModelSpec | None = None
    for choice in candidates:
        if spec is None and label(choice) in artifacts:
            try:
                spec = registry.backend_class(choice.name).peek_spec(artifacts[label(choice)])
            except GantoolError:
                continue  # a header that cannot be read: loading it says why
    for choice in candidates:
        if spec is None and label(choice) not in failed:
            backend = _load(model, direction, choice, failed)
            if backend is not None:
                loaded[label(choice)], spec = backend, backend.spec
    if spec is None:
        return GAN_BATCH  # nothing loads: the caller reports why
    return GAN_BATCH if spec.latent_dim is not None else TRANSLATOR_BATCH


def _measure(
    model: Path,
    direction: str | None,
    candidates: list[registry.Choice],
    batch: int,
    loaded: dict[str, Backend],
    failed: dict[str, str],
) -> dict[str, Figure]:
    """Each candidate's figure at ``batch``; ``loaded`` is left holding only the fastest.

    ROUNDS rounds, the candidates in turn (in reverse order every other round),
    each candidate's figure being its best round's: a burst of load from
    elsewhere on the machine during one short round does not decide the
    choice, which the cache then keeps.
    """
    from gantool.timing import LatencyStats, summarize, time_runs

    for choice in candidates:
        if label(choice) not in failed and label(choice) not in loaded:
            backend = _load(model, direction, choice, failed)
            if backend is not None:
                loaded[label(choice)] = backend
    rounds: dict[str, list[LatencyStats]] = {name: [] for name in loaded}
    inputs = {name: [_inputs(backend, batch, v) for v in range(INPUT_VARIANTS)] for name, backend in loaded.items()}
    for round_index in range(ROUNDS):
        for name in list(rounds)[:: 1 if round_index % 2 == 0 else -1]:
            try:
                timing = time_runs(loaded[name].run, inputs[name], warmup_s=WARMUP_S, min_runs=MIN_RUNS, max_s=MAX_S)
            except Exception as exc:  # noqa: BLE001 -- e.g. out of memory at this batch: drop it, the others may run
                failed[name] = f"{type(exc).__name__}: {_first_line(exc)}"
                del rounds[name], loaded[name]
                continue
            rounds[name].append(summarize(timing.durations, batch, timing.stable))
    figures = {}
    for name, stats in rounds.items():
        best = min(stats, key=lambda one: one.p50_ms)
        figures[name] = Figure(best.p50_ms, best.iqr_ms, sum(one.runs for one in stats))
    if figures:
        fastest = min(figures, key=lambda name: figures[name].p50_ms)
        for name in [name for name in loaded if name != fastest]:
            del loaded[name]  # let the others go: only the winner is used
    return figures


def _load(model: Path, direction: str | None, choice: registry.Choice, failed: dict[str, str]) -> Backend | None:
    """The candidate loaded, or None with why in ``failed``; a usage error (wrong direction) is the user's, raised."""
    try:
        return registry.create(choice.name, model, choice.device, direction, choice.precision)
    except UsageError:
        raise
    except GantoolError as exc:
        failed[label(choice)] = _first_line(exc)
    except Exception as exc:  # noqa: BLE001 -- a crashing engine drops its candidate, it does not end the job
        failed[label(choice)] = f"{type(exc).__name__}: {_first_line(exc)}"
    return None


def _inputs(backend: Backend, batch: int, variant: int) -> np.ndarray:
    """Input number ``variant``: standard-normal latents for a GAN, images in range at native size for a translator."""
    spec = backend.spec
    rng = np.random.default_rng(variant)
    if spec.latent_dim is not None:
        return rng.standard_normal((batch, spec.latent_dim), dtype=np.float32)
    low, high = spec.value_range
    return rng.uniform(low, high, backend.input_shape(batch)).astype(np.float32)


def _reason(
    winner: registry.Choice,
    ranked: list[registry.Choice],
    figures: dict[str, Figure],
    batch: int,
    fresh: bool,
    failed: dict[str, str],
    cpu_note: str,
) -> str:
    """``onnxruntime on cpu (auto: measured now at batch 64: 0.41 ms/batch vs torch 0.93 ms; on cpu: ...)``."""

    def short(choice: registry.Choice) -> str:
        where = f" on {choice.device}" if choice.device != winner.device else ""
        return f"{choice.name}{where}" + (f" {choice.precision}" if choice.precision != winner.precision else "")

    others = ", ".join(f"{short(c)} {_ms(figures[label(c)].p50_ms)} ms" for c in ranked[1:])
    measured = f"measured {'now ' if fresh else ''}at batch {batch}: {_ms(figures[label(winner)].p50_ms)} ms/batch"
    parts = [f"{measured} vs {others}" if others else measured]
    parts += [f"{name.split('/')[0]} on {name.split('/')[1]} failed: {why}" for name, why in failed.items()]
    if not fresh:
        parts.append("cached")
    if all(c.device == "cpu" for c in ranked):
        parts.append(cpu_note)
    if winner.quality:  # a lower precision won: say by how much, and why it was allowed to compete
        parts[:0] = [part for part in (_speedup(winner, ranked, figures), winner.quality) if part]
        return f"{winner.name} {winner.precision} on {winner.device} (auto: {'; '.join(parts)})"
    return f"{winner.name} on {winner.device} (auto: {'; '.join(parts)})"


def _speedup(winner: registry.Choice, ranked: list[registry.Choice], figures: dict[str, Figure]) -> str:
    """``2.0x fp32``: the winner against the fastest FP32 candidate measured beside it ('' when there is none)."""
    fp32 = [figures[label(c)].p50_ms for c in ranked if c.precision == "fp32"]
    return f"{min(fp32) / figures[label(winner)].p50_ms:.1f}x fp32" if fp32 else ""


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
