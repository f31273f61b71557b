"""What ``gantool bench`` measures per cell, and the run over every model, backend and precision.

A cell is a model × backend × precision × image size × batch size. Each is
timed with gantool.timing.time_runs (the one timing loop: cold call, warm-up
by time, runs until the median is stable or the budget is spent), on
INPUT_VARIANTS different input batches cycled between runs:

1. **end to end**: ``Backend.run``, float32 on the host in and out, copies and
   output conversion included. Its cold call is the first call the loaded
   backend sees at that batch shape: nothing warms it first (torch-compile's
   own load compiles on one native-size batch of 1; that is part of loading it);
2. **compute-only**: the callables of ``Backend.compute_fn``, inputs already on
   the device, each call one forward pass and a device sync. A CPU backend has
   none: its row says ``compute_is_end_to_end`` and repeats the end-to-end
   figures, since there the two are the same thing;
3. **memory**: peak process RSS (and GPU memory on cuda rows) while 1 and 2 ran.

Only when every cell of every model has been timed — so that neither torch's
import nor a reference model sits in memory or warms a cache while anything is
timed — come the figures that need torch:

4. **FLOPs** per image (benchmarks.flops) and the rate achieved end to end;
5. **parity**: each backend × precision × size, on one fixed input (the
   smallest batch size, the first input variant), against PyTorch FP32 on the
   CPU from the model's checkpoint: max abs error and PSNR over the spec's
   value range. Without a checkpoint (an .onnx or engine given alone) both are None.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gantool.benchmarks.memory import PeakMemory
from gantool.benchmarks.options import Target
from gantool.benchmarks.report import ROW_KEYS, size_label
from gantool.errors import BackendUnavailable, GantoolError, UsageError

if TYPE_CHECKING:
    from gantool.runtime.backends.base import Backend
    from gantool.runtime.gpu import GpuScan
    from gantool.spec import ModelSpec

INPUT_VARIANTS = 4  # distinct input batches cycled through during timed runs

Size = tuple[int, int]  # (height, width)
Row = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What to time for each loaded backend: image sizes × batch sizes, and the timing budget per cell."""

    batch_sizes: list[int]
    sizes: list[Size] | None  # None: the model's own size
    direction: str | None
    warmup_s: float
    min_runs: int
    max_s: float
    device: str  # auto: each backend's own choice (registry.default_device)
    precisions: list[str] | None  # None: each backend's default

    def sizes_for(self, spec: ModelSpec) -> list[Size]:
        """A GAN's one output size; a translator's requested sizes, or its native one."""
        if spec.latent_dim is None and self.sizes is not None:
            return self.sizes
        return [(spec.height, spec.width)]


def new_row(target: Target, backend: str, device: str, precision: str, size: Size | None = None,
            batch: int | None = None, status: str = "ok", error: str = "", artifact: str | None = None) -> Row:  # fmt: skip
    """A row with every key of the contract: the measured ones None until a cell fills them."""
    row: Row = dict.fromkeys(ROW_KEYS)
    height, width = size if size is not None else (None, None)
    row.update(model=target.name, backend=backend, device=device, precision=precision, height=height, width=width,
               batch_size=batch, status=status, error=error, artifact=artifact)  # fmt: skip
    return row


def input_batch(spec: ModelSpec, batch: int, variant: int, size: Size) -> np.ndarray:
    """Input number ``variant``: latents for a GAN, random images in the value range at ``size`` for a translator."""
    from gantool.latents import latent_batch

    if spec.latent_dim is not None:
        return latent_batch(variant, 0, batch, spec.latent_dim)
    low, high = spec.value_range
    return np.random.default_rng(variant).uniform(low, high, (batch, spec.channels, *size)).astype(np.float32)


def _call(compute: Callable[[], None]) -> None:
    compute()


def measure_cell(backend: Backend, plan: Plan, size: Size, batch: int) -> Row:
    """The measured fields of one cell: end-to-end statistics and cold call, compute-only, peak memory."""
    from gantool.timing import summarize, time_runs

    inputs = [input_batch(backend.spec, batch, variant, size) for variant in range(INPUT_VARIANTS)]
    budget: dict[str, Any] = {"warmup_s": plan.warmup_s, "min_runs": plan.min_runs, "max_s": plan.max_s}
    with PeakMemory(gpu=backend.device == "cuda") as peak:
        end_to_end = time_runs(backend.run, inputs, **budget)
        computes = [backend.compute_fn(x) for x in inputs]
        ready = [compute for compute in computes if compute is not None]
        compute = time_runs(_call, ready, **budget) if ready and len(ready) == len(computes) else None
    stats = summarize(end_to_end.durations, batch, end_to_end.stable)
    compute_stats = stats if compute is None else summarize(compute.durations, batch, compute.stable)
    return {
        **stats.to_dict(),
        "cold_ms": end_to_end.cold_s * 1000,
        "compute_p50_ms": compute_stats.p50_ms,
        "compute_images_per_s": compute_stats.images_per_s,
        "compute_is_end_to_end": compute is None,
        "peak_rss_mb": peak.rss_mb,
        "peak_gpu_mb": peak.gpu_mb,
    }


def parity(outputs: np.ndarray, reference: np.ndarray, value_range: tuple[float, float]) -> tuple[float, float] | None:
    """(max abs error, PSNR in dB with the value range's width as peak; inf when identical); None if shapes differ."""
    if outputs.shape != reference.shape:
        return None
    diff = outputs.astype(np.float64) - reference.astype(np.float64)
    if diff.size == 0:
        return 0.0, math.inf
    mse = float(np.mean(diff**2))
    peak = value_range[1] - value_range[0]
    return float(np.max(np.abs(diff))), math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@dataclass
class _ParityCheck:
    """One backend × precision × size's output on the fixed parity input, to compare once the timing is over."""

    target: Target
    spec: ModelSpec
    inputs: np.ndarray
    outputs: np.ndarray
    rows: list[Row]


@dataclass
class Bench:
    """The rows of a run, in the order measured: per model, backend, precision, size, batch size."""

    names: list[str]
    plan: Plan
    echo: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)  # backends that loaded a model, each once
    _scan: GpuScan | None = None
    _measured: list[tuple[Row, ModelSpec]] = field(default_factory=list)
    _checks: list[_ParityCheck] = field(default_factory=list)

    def run(self, target: Target) -> None:
        """Every backend × precision on ``target``: a row per cell, or one row saying why a backend did not load."""
        from gantool.runtime import gpu, registry

        for name in self.names:
            backend_class = registry.backend_class(name)
            device = self.plan.device
            if device == "auto":
                self._scan = self._scan or gpu.scan()
                device = registry.default_device(name, self._scan)
            for precision in self.plan.precisions or [backend_class.precisions[0]]:
                backend = self._load(target, name, device, precision)
                if backend is not None:
                    if backend.spec.latent_dim is not None and self.plan.sizes is not None:  # no header told before
                        raise UsageError(f"--sizes applies to translators only: {target.path} is a GAN generator")
                    if name not in self.loaded:
                        self.loaded.append(name)
                    self._time(target, backend)

    def _load(self, target: Target, name: str, device: str, precision: str) -> Backend | None:
        """Backend ``name`` loaded for ``target``; None (and a row saying why) if it cannot be."""
        loaded = _load(target, name, device, precision)
        if isinstance(loaded, tuple):
            status, why = loaded
            self.rows.append(new_row(target, name, device, precision, status=status, error=why))
            return None
        return loaded

    def _time(self, target: Target, backend: Backend) -> None:
        """One row per size × batch size; then the parity output at each size (after its cells: never a cold call)."""
        artifact = str(backend.artifact)
        for size in self.plan.sizes_for(backend.spec):
            timed: list[Row] = []
            for batch in self.plan.batch_sizes:
                cell = f"{target.name} {backend.name} {backend.device} {backend.precision} {size_label(*size)}"
                self.echo(f"bench: {cell} batch {batch}")
                row = new_row(target, backend.name, backend.device, backend.precision, size, batch, artifact=artifact)
                try:
                    row.update(measure_cell(backend, self.plan, size, batch))
                    timed.append(row)
                    self._measured.append((row, backend.spec))
                except Exception as exc:  # noqa: BLE001 -- e.g. out of memory at a large batch: record it, go on
                    row.update(status="failed", error=f"{type(exc).__name__}: {first_line(exc)}")
                self.rows.append(row)
            if timed:
                self._keep_parity_output(target, backend, size, timed)

    def _keep_parity_output(self, target: Target, backend: Backend, size: Size, rows: list[Row]) -> None:
        inputs = input_batch(backend.spec, min(self.plan.batch_sizes), 0, size)
        try:
            outputs = backend.run(inputs)
        except Exception:  # noqa: BLE001 -- the timed runs worked; a row without parity says less, not something false
            return
        self._checks.append(_ParityCheck(target, backend.spec, inputs, outputs, rows))

    def finish(self) -> None:
        """FLOPs and parity for every timed row: after all timing, since both import torch."""
        if importlib.util.find_spec("torch") is None:
            return  # no FLOP count and no reference without torch: those fields stay None
        from gantool.benchmarks.flops import flops_per_image

        for row, spec in self._measured:
            flops = flops_per_image(spec, row["height"], row["width"])
            row.update(flops_per_image=flops, achieved_gflops=flops * row["images_per_s"] / 1e9)
        references: dict[Target, Backend | None] = {}
        expected: dict[tuple[Target, bytes], np.ndarray | None] = {}  # one reference run per target and input
        for check in self._checks:
            if check.target not in references:
                references[check.target] = self._reference(check.target)
            reference = references[check.target]
            key = (check.target, check.inputs.tobytes())
            if key not in expected:
                expected[key] = None if reference is None else _reference_output(reference, check.inputs)
            wanted = expected[key]
            result = None if wanted is None else parity(check.outputs, wanted, check.spec.value_range)
            if result is not None:
                for row in check.rows:
                    row.update(max_abs_err=result[0], psnr_db=result[1])

    def _reference(self, target: Target) -> Backend | None:
        """PyTorch FP32 on the CPU from the target's checkpoint; None when it has none (or torch cannot load it)."""
        from gantool.runtime import registry

        try:
            return registry.create("torch", target.path, "cpu", target.direction, "fp32")
        except GantoolError:
            return None


def _load(target: Target, name: str, device: str, precision: str) -> Backend | tuple[str, str]:
    """The loaded backend, or (status, why) for its row: unsupported, unavailable or failed."""
    from gantool.runtime import registry

    backend_class = registry.backend_class(name)
    if precision not in backend_class.precisions:
        return "unsupported", f"{name} runs {', '.join(backend_class.precisions)} only"
    if device not in backend_class.devices:
        return "unsupported", f"{name} runs on {', '.join(backend_class.devices)} only"
    try:
        backend = backend_class(device, precision)
    except UsageError as exc:  # a combination the backend refuses, e.g. torch fp16 on the CPU
        return "unsupported", str(exc)
    try:
        backend.load(target.path, target.direction)
    except UsageError:  # e.g. a file that is the other direction: the same for every backend, so not a row
        raise
    except GantoolError as exc:
        return ("unavailable" if isinstance(exc, BackendUnavailable) else "failed"), str(exc)
    except Exception as exc:  # noqa: BLE001 -- a crashing engine is a row in the table, not the end of the run
        return "failed", f"{type(exc).__name__}: {first_line(exc)}"
    return backend


def _reference_output(reference: Backend, inputs: np.ndarray) -> np.ndarray | None:
    try:
        return reference.run(inputs)
    except GantoolError:  # inputs the checkpoint's model does not take (another model's export): no parity figure
        return None


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
