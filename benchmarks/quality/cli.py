"""``gantool eval``: are the samples good, and did an export (FP16, onnxruntime, TensorRT) make them worse?

A GAN generator: N samples against its real training data (or ``--real``).
A CycleGAN run: each direction translates the source domain's test split and
is compared with the target domain's test split; the cycle back gives the
reconstruction error. With several ``--backends`` or ``--precisions`` the
same latents (or the same images) go through each, and each is judged against
the FP32 PyTorch outputs beside a model-vs-model noise floor. Models load
through the runtime's public API only (``Generator``, ``Translator``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gantool.artifacts import DIRECTIONS
from gantool.errors import UsageError

if TYPE_CHECKING:
    from gantool.benchmarks.quality.evaluate import Evaluation
    from gantool.benchmarks.quality.features import FeatureReader

DEFAULT_N = 1000
MIN_N = 4  # precision/recall's k-NN balls (k = 3) need k + 1 samples in each set


def eval_command(
    model: Annotated[
        Path, typer.Argument(help="A run dir, checkpoint, .onnx or .engine (a CycleGAN run dir: both directions).")
    ],
    n: Annotated[int, typer.Option("-n", "--n", min=MIN_N, help="Generators: samples per backend.")] = DEFAULT_N,
    real: Annotated[
        Path | None,
        typer.Option(
            help="Real images: a folder or an .npz of uint8 N×H×W×C (translators: a folder with trainA/ trainB/ "
            "testA/ testB/). Default: the model's own training data.",
            show_default=False,
        ),
    ] = None,
    extractor: Annotated[
        str,
        typer.Option(help="digits, inception, or auto (digits for 28×28 grey models and digits-m, else inception)."),
    ] = "auto",
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            help="The standard FID Inception TorchScript file (default: the one the inception extra installs).",
            show_default=False,
        ),
    ] = None,
    backends: Annotated[
        str, typer.Option(help="Comma-separated backends, all, or auto (the one gantool generate would pick).")
    ] = "auto",
    precisions: Annotated[str, typer.Option(help="Comma-separated precisions: each backend × each.")] = "fp32",
    device: Annotated[str, typer.Option(help="Where the backends run: auto, cpu or cuda.")] = "auto",
    direction: Annotated[
        str | None, typer.Option(help="CycleGAN run dirs: only this direction, a2b or b2a.", show_default=False)
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seeds the latents, the real-data split and KID's subsets.")] = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size for the model and the extractor.")] = 64,
    cache: Annotated[bool, typer.Option(help="Reuse real data's features from the cache (keyed by content).")] = True,
    json_path: Annotated[Path | None, typer.Option("--json", help="Save the report as JSON.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Draw FID and KID per row as a PNG.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")] = False,
) -> None:
    """Measure sample quality: FID, KID, precision/recall, density/coverage, each beside its noise floor.

    Features come from a network named with its weights' sha256 in every report: digits
    (bundled, offline, also reads the digit) or inception (the standard FID Inception-v3).
    """
    from gantool.benchmarks.options import parse_backends, parse_precisions
    from gantool.benchmarks.quality.extractors import default_extractor, open_extractor
    from gantool.benchmarks.quality.features import FeatureReader
    from gantool.benchmarks.quality.run import backend_combos, evaluate_model, model_spec
    from gantool.runtime.registry import check_device

    _check_outputs(json_path, plot_path, force)
    if direction is not None and direction not in DIRECTIONS:
        raise UsageError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if not model.exists():
        raise UsageError(f"{model} does not exist")
    check_device(device, "--device")
    names = ["auto"] if backends == "auto" else parse_backends(backends)
    combos = backend_combos(names, parse_precisions(precisions))
    spec = model_spec(model, direction)
    name = default_extractor(spec) if extractor == "auto" else extractor
    reader = FeatureReader(open_extractor(name, inception_weights=inception_weights, batch_size=batch_size), cache)
    evaluations = evaluate_model(model, spec, reader, combos, device=device, real=real, n=n, seed=seed,
                                 batch_size=batch_size, direction=direction)  # fmt: skip
    given = [("--real", real), ("--direction", direction), ("--inception-weights", inception_weights)]
    words = [word for flag, value in given if value is not None for word in (flag, str(value))]
    words += ["--batch-size", str(batch_size)] + ([] if cache else ["--no-cache"])
    _report(evaluations, reader, model, combos, device, seed, n, name, json_path, plot_path, force, words)


def _check_outputs(json_path: Path | None, plot_path: Path | None, force: bool) -> None:
    from gantool.files import check_output_path

    for flag, path in (("--json", json_path), ("--plot", plot_path)):
        if path is not None:
            check_output_path(path, force, f"{flag} file")
    if json_path is not None and plot_path is not None and json_path.resolve() == plot_path.resolve():
        raise UsageError("--json and --plot must name different files")
    if plot_path is not None:
        from gantool.benchmarks.plot import check_plot_available

        check_plot_available()
        if plot_path.suffix.lower() != ".png":
            raise UsageError(f"--plot writes a PNG: give a .png file, got {plot_path}")


def _report(
    evaluations: list[Evaluation], reader: FeatureReader, model: Path, combos: list[tuple[str, str]], device: str,
    seed: int, n: int, extractor: str, json_path: Path | None, plot_path: Path | None, force: bool,
    options: list[str],
) -> None:  # fmt: skip
    from gantool.benchmarks.quality.report import format_evaluation, make_report, plot

    described = reader.extractor.describe()
    typer.echo(f"extractor: {described['name']} (sha256 {described['sha256']}, {described['dim']}-d, "
               f"on {described['device']})")  # fmt: skip
    if reader.cache_hits:
        typer.echo(f"real features from the cache: {', '.join(reader.cache_hits)}", err=True)
    for evaluation in evaluations:
        typer.echo("")
        typer.echo(format_evaluation(evaluation))
    settings = {"n": n, "seed": seed, "device": device, "backends": [f"{b} {p}" for b, p in combos]}
    words = [str(model), "-n", str(n), "--extractor", extractor, "--seed", str(seed), "--device", device, *options]
    words += ["--backends", ",".join(dict.fromkeys(b for b, _ in combos))]
    words += ["--precisions", ",".join(dict.fromkeys(p for _, p in combos))]
    report = make_report(evaluations, described, settings, shlex.join(["gantool", "eval", *words]))
    if json_path is not None:
        from gantool.benchmarks.report import write_json

        write_json(report, json_path)
        typer.echo(f"saved {json_path}", err=True)
    if plot_path is not None:
        plot(report, plot_path)
        typer.echo(f"saved {plot_path}", err=True)
