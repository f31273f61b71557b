"""``gantool serve``: generators and translators on NVIDIA Triton Inference Server (the ``serve`` extra).

typer and the standard library at the top; PyTriton, numpy and the backends
load inside the command, so ``gantool --help`` stays fast without the extra.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gantool.runtime.serve.limits import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_REQUEST_MB,
    DEFAULT_MAX_SIDE,
    DEFAULT_QUEUE_DELAY_US,
)

if TYPE_CHECKING:
    from gantool.runtime.serve.endpoints import Endpoint
    from gantool.runtime.serve.limits import Limits

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SUFFIXES = (".fp16.engine", ".engine", ".fp16.onnx", ".onnx", ".safetensors")
PORT = {"min": 1, "max": 65535}
TRANSFERS = ("auto", "shm", "inline")


def serve(
    models: Annotated[
        list[str],
        typer.Argument(
            metavar="[NAME=]MODEL...",
            help="Run dirs (a CycleGAN run: both directions), checkpoints, .onnx files or TensorRT engines; NAME= "
            "sets the served name (default: the run dir's name, or the file's stem).",
            show_default=False,
        ),
    ],
    backend: Annotated[str, typer.Option(help="auto, torch, onnxruntime, tensorrt, ... as for generate.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    precision: Annotated[
        str | None, typer.Option(help="fp32, fp16, bf16 or int8 (default: the backend's own).")
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. The default answers this machine only; 0.0.0.0 answers anyone "
            "who can reach it, with no authentication (see the README)."
        ),
    ] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(help="HTTP port (KServe v2 REST).", **PORT)] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port (KServe v2 gRPC).", **PORT)] = 8001,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port.", **PORT)] = 8002,
    max_batch: Annotated[
        int, typer.Option(min=1, max=4096, help="Most samples (rows) per request, and per batched execution.")
    ] = DEFAULT_MAX_BATCH,
    max_side: Annotated[int, typer.Option(min=8, max=16384, help="Translators: longest image side accepted.")] = (
        DEFAULT_MAX_SIDE
    ),
    max_request_mb: Annotated[
        int, typer.Option(min=1, max=2047, help="Most input bytes one request may carry, in MiB.")
    ] = DEFAULT_MAX_REQUEST_MB,
    queue_delay_us: Annotated[
        int,
        typer.Option(min=0, max=10_000_000, help="How long the dynamic batcher may hold a request to batch it."),
    ] = DEFAULT_QUEUE_DELAY_US,
    drain_timeout: Annotated[
        int, typer.Option(min=1, max=3600, help="Seconds to finish the requests in flight on SIGTERM.")
    ] = 30,
    log_file: Annotated[
        Path | None, typer.Option(help="Keep tritonserver's log here (default: discarded on exit).", show_default=False)
    ] = None,
    transfer: Annotated[
        str,
        typer.Option(
            help="How tensors travel between Triton and the models: shm (shared memory, faster for images), "
            "inline (in the message, faster for a GAN's small rows) or auto: inline when every model is a GAN."
        ),
    ] = "auto",
) -> None:
    """Serve generators on NVIDIA Triton (PyTriton): HTTP and gRPC, dynamic batching, health and statistics.

    A GAN run NAME is served as three models: NAME (seed + index per row →
    the images gantool generate writes for those indices), NAME_count (seed +
    count [+ first index] → count images) and NAME_latents (your own latents).
    A translator NAME takes uint8 N×H×W×C images (C 1-4, any sides up to
    --max-side) and returns them translated at the same size, as gantool
    translate --keep-size does. Needs the serve extra: pip install "gantool\\[serve]".
    """
    from gantool.errors import UsageError
    from gantool.runtime.registry import check_device, check_precision
    from gantool.runtime.serve.limits import Limits
    from gantool.runtime.serve.server import ServerOptions, check_ports
    from gantool.runtime.serve.server import serve as run_server

    check_device(device, "--device")
    check_precision(precision, "--precision")
    if transfer not in TRANSFERS:
        raise UsageError(f"--transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    named = [_name_and_path(argument) for argument in models]
    limits = Limits(max_batch=max_batch, max_side=max_side, max_request_bytes=max_request_mb << 20)
    options = ServerOptions(
        host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, max_batch=max_batch,
        queue_delay_us=queue_delay_us, drain_seconds=drain_timeout, log_file=log_file,
    )  # fmt: skip
    check_ports(options)  # before loading models: a taken port is found in a second, not after auto's measurements
    if importlib.util.find_spec("pytriton") is None:
        raise UsageError('gantool serve needs the serve extra: pip install "gantool[serve]"')
    endpoints = _endpoints(named, backend, device, precision, limits)
    only_gans = all(endpoint.kind == "gan" for endpoint in endpoints)
    options = replace(options, inline_tensors=transfer == "inline" or (transfer == "auto" and only_gans))
    run_server(endpoints, options, lambda line: typer.echo(line, err=True))


def _endpoints(
    models: list[tuple[str, Path]], backend: str, device: str, precision: str | None, limits: Limits
) -> list[Endpoint]:
    """Load every (name, MODEL) and describe the Triton models it becomes; print one table row per served model."""
    import gantool
    from gantool.artifacts import run_checkpoints
    from gantool.errors import UsageError
    from gantool.runtime.generator import Generator
    from gantool.runtime.serve.endpoints import generator_endpoints, translator_endpoints

    endpoints: list[Endpoint] = []
    rows = [("model", "backend", "takes → returns")]
    for name, path in models:
        directions = [None]
        if path.is_dir() and any(p.name.startswith("generator_") for p in run_checkpoints(path)):
            directions = ["a2b", "b2a"]
        for direction in directions:
            served = name if direction is None else f"{name}_{direction}"
            loaded = gantool.load(
                path, backend, device=device, precision=precision, direction=direction, batch_size=limits.max_batch
            )
            typer.echo(f"{served}: backend {loaded.reason}", err=True)
            made = (
                generator_endpoints(served, loaded, limits)
                if isinstance(loaded, Generator)
                else translator_endpoints(served, loaded, limits)
            )
            endpoints += made
            rows += [(e.name, f"{loaded.backend} {loaded.device} {loaded.precision}", e.description) for e in made]
    names = [endpoint.name for endpoint in endpoints]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"two models would be served as {', '.join(repeated)}: name them, e.g. digits=runs/digits")
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return endpoints


def _name_and_path(argument: str) -> tuple[str, Path]:
    """``NAME=MODEL`` or ``MODEL``: the served name (checked against Triton's rules) and the path."""
    from gantool.errors import UsageError

    name, sep, rest = argument.partition("=")
    path = Path(rest if sep else argument)
    if not sep:
        name = path.resolve().name if path.is_dir() else _stem(path.name)
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"{name!r} cannot name a Triton model (letters, digits, '_', '.', '-'): give one with NAME={path}"
        )
    if not path.exists():
        raise UsageError(f"{path}: no such run dir or file")
    return name, path


def _stem(file_name: str) -> str:
    for suffix in SUFFIXES:
        if file_name.endswith(suffix):
            return file_name.removesuffix(suffix)
    return file_name
