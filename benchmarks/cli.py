"""``gantool bench``: per model × backend × precision × size × batch size, how fast and how exact, as a table and files.

MODEL is any gantool artifact, one or several: a run dir means all of its
generators (a CycleGAN run: both translators, or the one ``--direction``
names), and each backend loads the form it finds there (torch the checkpoint,
onnxruntime the .onnx or .fp16.onnx by precision, tensorrt the engine); a
file means itself. Each backend runs on ``--device`` (auto: the GPU when that
backend can use one here) at each of ``--precisions`` it has (default: its own).
A GAN's output size is fixed, so ``--sizes`` (translators only) is refused for
one rather than silently ignored; so is ``--direction``.

What each cell measures, and how, is benchmarks.measure's docstring. A backend
that is not installed, lacks the precision or device, or cannot load the model
gets a row saying why instead of stopping the run; a cell that fails (out of
memory, say) gets its own failed row. Every output file is checked before
anything is timed, and ``--compare``'s old report is read then too, so a bad
path or file costs no benchmark. Timings belong here and in
benchmarks/RESULTS.md, never in pass/fail tests.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gantool.artifacts import DIRECTIONS
from gantool.benchmarks.measure import INPUT_VARIANTS, Bench, Plan
from gantool.benchmarks.options import (
    Target,
    expand_models,
    parse_backends,
    parse_batch_sizes,
    parse_image_sizes,
    parse_precisions,
)
from gantool.errors import GantoolError, UsageError

if TYPE_CHECKING:
    from gantool.spec import ModelSpec

Size = tuple[int, int]


def bench(
    models: Annotated[
        list[Path],
        typer.Argument(
            help="Run dirs, checkpoints, .onnx or .engine files; a run dir means all its generators and their exports.",
            show_default=False,
        ),
    ],
    backends: Annotated[
        str, typer.Option(help="Comma-separated backends to compare, or all (every registered backend).")
    ] = "torch,onnxruntime",
    device: Annotated[
        str,
        typer.Option(help="auto, cpu or cuda. auto: each backend on the GPU when it can use one here, else the CPU."),
    ] = "auto",
    precisions: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated precisions, e.g. fp32,fp16: each backend × each; a backend without one gets a row "
            "saying so (default: each backend's own).",
            show_default=False,
        ),
    ] = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,64,256",
    warmup_s: Annotated[
        float, typer.Option(min=0.0, help="Untimed warm-up per cell, seconds (at least one run).")
    ] = 0.5,
    min_runs: Annotated[int, typer.Option(min=1, help="Timed runs per cell, at least.")] = 10,
    max_s: Annotated[
        float, typer.Option(min=0.0, help="Time budget per cell, seconds (exceeded only to reach --min-runs).")
    ] = 2.0,
    sizes: Annotated[
        str | None,
        typer.Option(
            help="Translators only: comma-separated image sizes, 256 or HxW like 192x256; sides multiples of 4, "
            "at least 8 (default: the model's native size).",
            show_default=False,
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(
            help="CycleGAN run dirs: time only this translator, a2b or b2a (default: both).", show_default=False
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Save the report (rows, settings, environment) as JSON.")
    ] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Save the rows as CSV.")] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Save the table with its environment as Markdown.")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Draw throughput and latency as a PNG (needs matplotlib).")
    ] = None,
    compare_path: Annotated[
        Path | None,
        typer.Option("--compare", help="A saved --json report: print ratios per row against it, flag regressions."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")] = False,
) -> None:
    """Time each backend (at each precision) on each batch size: latency, throughput, memory, FLOPs and parity.

    End to end (host in, host out) and compute-only (inputs on the device),
    the cold first call apart from warm ones, peak memory, FLOPs per image,
    and the error against PyTorch FP32 on the checkpoint.
    """
    from gantool.runtime.registry import check_device

    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    targets = expand_models(models, direction)
    names = parse_backends(backends)
    check_device(device, "--device")
    wanted_precisions = None if precisions is None else parse_precisions(precisions)
    batches = parse_batch_sizes(batch_sizes)
    image_sizes = None if sizes is None else parse_image_sizes(sizes)
    outputs = {"--json": json_path, "--csv": csv_path, "--markdown": markdown_path, "--plot": plot_path}
    _check_outputs(outputs, compare_path, force)
    old_report = _load_comparison(compare_path) if compare_path is not None else None
    for target in targets:  # before any load: a wrong option is refused without timing anything
        _refuse_translator_options_for_a_gan(_peek_spec(target, names), image_sizes, direction, target.path)

    plan = Plan(batches, image_sizes, direction, warmup_s, min_runs, max_s, device, wanted_precisions)
    run = Bench(names, plan, echo=lambda line: typer.echo(line, err=True))
    for target in targets:
        run.run(target)
    run.finish()
    _report(run, models, names, plan, outputs, old_report, compare_path, force)
    if not any(row["status"] == "ok" for row in run.rows):
        raise GantoolError(f"no backend could run {' '.join(map(str, models))} (see the notes above)")


def _check_outputs(outputs: dict[str, Path | None], compare_path: Path | None, force: bool) -> None:
    """Every output writable and new (or --force), no two the same file, matplotlib there for --plot."""
    from gantool.files import check_output_path

    given = {flag: path for flag, path in outputs.items() if path is not None}
    for flag, path in given.items():
        check_output_path(path, force, f"{flag} file")
    resolved = [path.resolve() for path in given.values()]
    if len(set(resolved)) < len(resolved) or (compare_path is not None and compare_path.resolve() in resolved):
        raise UsageError("--json, --csv, --markdown, --plot and --compare must name different files")
    if plot_path := given.get("--plot"):
        from gantool.benchmarks.plot import check_plot_available

        check_plot_available()
        if plot_path.suffix.lower() != ".png":
            raise UsageError(f"--plot writes a PNG: give a .png file, got {plot_path}")


def _load_comparison(path: Path) -> dict[str, Any]:
    from gantool.benchmarks.report import load_report

    return load_report(path)


def _report(
    run: Bench,
    models: list[Path],
    names: list[str],
    plan: Plan,
    outputs: dict[str, Path | None],
    old_report: dict[str, Any] | None,
    compare_path: Path | None,
    force: bool,
) -> None:
    """The table on stdout, the files asked for, and the comparison with the old report."""
    from gantool.benchmarks import report as reports

    typer.echo(reports.format_table(run.rows))
    settings = {"backends": names, **asdict(plan), "input_variants": INPUT_VARIANTS}
    command = _command(models, names, plan, {**outputs, "--compare": compare_path}, force)
    report = reports.make_report([str(m) for m in models], settings, _environment(run), run.rows, command)
    writers = {"--json": reports.write_json, "--csv": reports.write_csv, "--markdown": reports.write_markdown}
    for flag, path in outputs.items():
        if path is None:
            continue
        if flag == "--plot":
            from gantool.benchmarks.plot import plot

            plot(report, path)
        else:
            writers[flag](report, path)
        typer.echo(f"saved {path}", err=True)
    if old_report is not None:
        from gantool.benchmarks.compare import compare, environment_differences, format_comparison

        typer.echo("")
        typer.echo(format_comparison(compare(old_report, report)))
        for difference in environment_differences(old_report, report):
            typer.echo(f"environment differs: {difference}")


def _command(models: list[Path], names: list[str], plan: Plan, outputs: dict[str, Path | None], force: bool) -> str:
    """The command line that reproduces this run, every measuring option spelled out (defaults may change)."""
    words = [*map(str, models), "--backends", ",".join(names), "--device", plan.device]
    if plan.precisions is not None:
        words += ["--precisions", ",".join(plan.precisions)]
    words += ["--batch-sizes", ",".join(map(str, plan.batch_sizes))]
    if plan.sizes is not None:
        words += ["--sizes", ",".join(f"{h}x{w}" for h, w in plan.sizes)]
    if plan.direction is not None:
        words += ["--direction", plan.direction]
    words += ["--warmup-s", f"{plan.warmup_s:g}", "--min-runs", str(plan.min_runs), "--max-s", f"{plan.max_s:g}"]
    for flag, path in outputs.items():
        if path is not None:
            words += [flag, str(path)]
    return shlex.join(["gantool", "bench", *words, *(["--force"] if force else [])])


def _peek_spec(target: Target, names: list[str]) -> ModelSpec | None:
    """The target's spec from the first installed backend's artifact header (no torch, no onnxruntime import).

    None when no artifact could be read this way: the backends then say why in their rows.
    """
    from gantool.runtime import registry

    for name in names:
        backend = registry.backend_class(name)
        if not backend.availability().ok:
            continue
        try:
            spec = backend.peek_spec(backend.resolve(target.path, target.direction))
        except GantoolError:
            continue
        if spec is not None:
            return spec
    return None


def _refuse_translator_options_for_a_gan(
    spec: ModelSpec | None, image_sizes: list[Size] | None, direction: str | None, model: Path
) -> None:
    """--sizes and --direction mean nothing for a GAN: say so (exit 2) rather than time something else."""
    if spec is None or spec.latent_dim is None:
        return
    if image_sizes is not None:
        raise UsageError(
            f"--sizes applies to translators only: {model} is a GAN generator "
            f"with a fixed {spec.height}x{spec.width} output"
        )
    if direction is not None:
        raise UsageError(f"--direction applies to CycleGAN translators only: {model} is a GAN generator")


def _environment(run: Bench) -> dict[str, Any]:
    """The machine and the versions of the engines that ran, plus the GPUs when any row ran on one."""
    from gantool.benchmarks.report import environment
    from gantool.runtime import gpu, registry

    engines = sorted({module for name in run.loaded for module in registry.backend_class(name).requires[:1]})
    on_gpu = any(row["device"] == "cuda" and row["status"] == "ok" for row in run.rows)
    return environment(engines, [found.describe() for found in gpu.scan().gpus] if on_gpu else None)
