"""Triton Inference Server, started and fed through PyTriton: the endpoints bound, served until SIGTERM.

PyTriton runs NVIDIA's own ``tritonserver`` binary (HTTP, gRPC, metrics, the
dynamic batcher) and hands each execution's requests to a Python function in
this process, so the models stay gantool's loaded backends. Stopping sends
the server SIGINT: it stops taking requests, finishes those in flight (up to
the drain timeout) and exits.

Triton's administrative endpoints (model loading, shared memory, tracing,
logging) answer only with a token PyTriton generates and never shows, so a
client can infer, check health and read statistics, and nothing else.
"""

from __future__ import annotations

import logging
import os
import socket
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gantool.errors import GantoolError, UsageError
from gantool.runtime.serve.endpoints import Endpoint
from gantool.signals import StopSignals

LOCALHOST = "127.0.0.1"
RESTRICTED = ["shared-memory", "model-repository", "trace", "logging"]  # statistics stay readable
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ServerOptions:
    """Where the server listens and how it batches and stops (``gantool serve``'s options)."""

    host: str = LOCALHOST
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 64
    queue_delay_us: int = 500
    drain_seconds: int = 30
    log_file: Path | None = None
    inline_tensors: bool = False

    @property
    def ports(self) -> dict[str, int]:
        return {"--http-port": self.http_port, "--grpc-port": self.grpc_port, "--metrics-port": self.metrics_port}


def preferred_batches(max_batch: int) -> list[int]:
    """Batch sizes the dynamic batcher aims for: powers of two from 4 up to the max (itself included)."""
    sizes = [size for size in (4, 8, 16, 32, 64, 128, 256) if size < max_batch]
    return [*sizes, max_batch]


def check_ports(options: ServerOptions) -> None:
    """Refuse ports that repeat or are taken now, in one line, before Triton starts (it would only time out)."""
    ports = options.ports
    if len(set(ports.values())) < len(ports):
        raise UsageError(f"{', '.join(f'{k} {v}' for k, v in ports.items())}: each needs a port of its own")
    for flag, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((options.host, port))
            except OSError as exc:
                raise UsageError(f"{flag} {port}: cannot listen on {options.host}:{port} ({exc.strerror})") from None


def serve(endpoints: Sequence[Endpoint], options: ServerOptions, echo: Callable[[str], None]) -> None:
    """Serve ``endpoints`` until SIGTERM or Ctrl-C, then drain the requests in flight and return."""
    check_ports(options)
    _find_libpython()
    logging.getLogger("pytriton").setLevel(logging.ERROR)  # a refused request is the client's news, not ours
    if options.inline_tensors:
        # PyTriton passes tensors between tritonserver's Python stub and this process through shared memory
        # blocks (its TensorStore), or with this variable set, inline in the message. Measured here: inline
        # takes a GAN's small rows from 5.2 to 4.4 ms a request and raises its throughput at concurrency 16;
        # shared memory is faster for images (256²: 60 against 78 ms). tritonserver inherits the environment.
        os.environ["PYTRITON_NO_TENSORSTORE"] = "1"
    else:
        os.environ.pop("PYTRITON_NO_TENSORSTORE", None)
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    with tempfile.TemporaryDirectory(prefix="gantool-serve-") as scratch:
        log_file = options.log_file or Path(scratch) / "tritonserver.log"
        config = TritonConfig(
            http_address=options.host, http_port=options.http_port,
            grpc_address=options.host, grpc_port=options.grpc_port,
            metrics_address=options.host, metrics_port=options.metrics_port,
            exit_timeout_secs=options.drain_seconds, log_verbose=0, log_file=log_file,
            allow_sagemaker=False, allow_vertex_ai=False, allow_gpu_metrics=False,
        )  # fmt: skip
        triton = Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=RESTRICTED))
        batcher = DynamicBatcher(
            max_queue_delay_microseconds=options.queue_delay_us,
            preferred_batch_size=preferred_batches(options.max_batch),
        )
        for endpoint in endpoints:
            triton.bind(
                model_name=endpoint.name,
                infer_func=endpoint.infer,
                inputs=[
                    Tensor(name=t.name, dtype=t.dtype, shape=t.shape, optional=t.optional) for t in endpoint.inputs
                ],
                outputs=[Tensor(name=t.name, dtype=t.dtype, shape=t.shape) for t in endpoint.outputs],
                config=ModelConfig(batching=True, max_batch_size=options.max_batch, batcher=batcher)
                if endpoint.batched
                else ModelConfig(batching=False),
                strict=True,
            )
        with StopSignals() as stop:
            started = time.perf_counter()
            try:
                triton.run()
            except Exception as exc:  # noqa: BLE001 - PyTriton raises its own errors, TimeoutError, OSError...
                triton.stop()
                raise GantoolError(f"Triton did not start: {exc}; its log: {_tail(log_file)}") from None
            echo(
                f"serving {len(endpoints)} models on {options.host} (started in {time.perf_counter() - started:.1f} s)"
            )
            echo(f"  HTTP  http://{options.host}:{options.http_port}   (KServe v2: /v2/models/NAME/infer)")
            echo(f"  gRPC  {options.host}:{options.grpc_port}")
            echo(f"  metrics http://{options.host}:{options.metrics_port}/metrics")
            echo("ready; SIGTERM or Ctrl-C drains the requests in flight and stops")
            while not stop.requested:
                if not triton.is_alive():
                    time.sleep(POLL_SECONDS)  # a signal to the whole process group reaches tritonserver first
                    if stop.requested:
                        break
                    triton.stop()
                    raise GantoolError(f"Triton stopped unexpectedly; its log: {_tail(log_file)}")
                time.sleep(POLL_SECONDS)
            echo(f"{stop.describe()}: draining the requests in flight (up to {options.drain_seconds} s), then stopping")
            triton.stop()
        echo("stopped")


def _find_libpython() -> None:
    """tritonserver's Python backend links libpython: name its folder when Python is not the system's (pyenv, conda)."""
    folder = sysconfig.get_config_var("LIBDIR")
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if folder and folder not in current.split(os.pathsep):
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(part for part in (current, folder) if part)


def _tail(log_file: Path, lines: int = 5) -> str:
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(none written)"
    return " | ".join(text[-lines:]) or "(empty)"
