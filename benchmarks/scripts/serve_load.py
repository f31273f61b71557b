"""Load on `gantool serve`: throughput and p50/p90/p99 latency at several concurrencies, against in-process calls.

For each concurrency C, C client threads each send requests of --rows samples (seed + index rows, the
`NAME` model) back to back for --seconds, over HTTP or gRPC, one tritonclient client per thread, to a
`gantool serve MODEL` started here on 127.0.0.1 (its own process, under `timeout -k`, stopped by its PID).
The same C threads then call the same model in-process (`gantool.load`, the same backend: latents for the
rows, the network, uint8 pixels), which is what the server's endpoint does for one request. The ratio is
the price of serving: HTTP or gRPC, Triton's queue, PyTriton's hop to this process's Python.

A bounded tritonclient loop and not perf_analyzer: perf_analyzer's wheel needs a newer glibc than these
machines have. Clients and server share the machine's cores, as they would with perf_analyzer.

    python benchmarks/scripts/serve_load.py runs/digits --backend onnxruntime --concurrency 1,4,16,64 \
        --seconds 10 --json benchmarks/results/serve_load_digits.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from script_common import environment, save

import gantool
from gantool.images import to_uint8
from gantool.latents import latent_batch

START_LIMIT_S = 180


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a GAN run dir, checkpoint or .onnx file")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--rows", type=int, default=1, help="samples per request")
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency and side")
    parser.add_argument("--protocol", choices=["http", "grpc"], default="grpc")
    parser.add_argument("--queue-delay-us", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    generator = gantool.load(args.model, args.backend, batch_size=args.rows)
    spec = generator.spec
    assert spec.latent_dim is not None, "serve_load measures a GAN"

    def in_process(first: int) -> None:
        latents = latent_batch(0, first, args.rows, spec.latent_dim)
        to_uint8(generator.runner.run(latents), spec.value_range)

    server, ports = start_server(args.model, args.backend, args.queue_delay_us, max(64, args.rows))
    rows = []
    try:
        for concurrency in levels:
            local = run_level(concurrency, args.seconds, lambda worker: in_process)
            remote = run_level(concurrency, args.seconds, lambda worker: remote_caller(args, ports))
            ratio = remote["throughput"] / local["throughput"]
            rows.append({"concurrency": concurrency, "in_process": local, "server": remote, "ratio": ratio})
            print(
                f"| {concurrency} | {local['throughput']:.0f} | {remote['throughput']:.0f} | {ratio:.0%} | "
                + " / ".join(f"{local[p] * 1e3:.2f}" for p in ("p50", "p90", "p99"))
                + " | "
                + " / ".join(f"{remote[p] * 1e3:.2f}" for p in ("p50", "p90", "p99"))
                + " |",
                flush=True,
            )
    finally:
        stop_server(server)
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        summary = {"settings": settings, "backend": generator.reason, "environment": environment(), "levels": rows}
        save(summary, args.json)


def remote_caller(args: argparse.Namespace, ports: dict[str, int]) -> Callable[[int], None]:
    """A function sending one request of --rows samples through its own tritonclient client."""
    if args.protocol == "grpc":
        import tritonclient.grpc as client_module

        client = client_module.InferenceServerClient(f"127.0.0.1:{ports['grpc']}")
    else:
        import tritonclient.http as client_module

        client = client_module.InferenceServerClient(f"127.0.0.1:{ports['http']}")
    seed = client_module.InferInput("seed", [args.rows, 1], "INT64")
    seed.set_data_from_numpy(np.zeros((args.rows, 1), np.int64))
    index = client_module.InferInput("index", [args.rows, 1], "INT64")

    def call(first: int) -> None:
        index.set_data_from_numpy(np.arange(first, first + args.rows, dtype=np.int64).reshape(-1, 1))
        client.infer("gan", [seed, index])

    return call


def run_level(concurrency: int, seconds: float, make_caller: Callable[[int], Callable[[int], None]]) -> dict:
    """C threads, each calling back to back for ``seconds`` (after one warm-up call); latencies pooled."""
    callers = [make_caller(worker) for worker in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    barrier = threading.Barrier(concurrency + 1)

    def loop(worker: int) -> None:
        call = callers[worker]
        try:
            call(worker)  # warm-up: connection, first allocation
            barrier.wait(timeout=60)
            end = time.perf_counter() + seconds
            for request in range(10_000_000):  # bounded; the clock ends it long before
                if time.perf_counter() > end:
                    break
                started = time.perf_counter()
                call(worker * 1_000_000 + request)
                latencies[worker].append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - any error ends the measurement, reported below
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=loop, args=(w,), daemon=True) for w in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    if errors:
        sys.exit(f"errors at concurrency {concurrency}: {errors[:3]}")
    pooled = np.concatenate([np.array(x) for x in latencies])
    return {
        "requests": int(pooled.size), "seconds": elapsed, "throughput": pooled.size / elapsed,
        "p50": float(np.percentile(pooled, 50)), "p90": float(np.percentile(pooled, 90)),
        "p99": float(np.percentile(pooled, 99)), "mean": float(pooled.mean()),
    }  # fmt: skip


def start_server(model: Path, backend: str, queue_delay_us: int, max_batch: int) -> tuple[subprocess.Popen, dict]:
    probes = [socket.socket() for _ in range(3)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    http, grpc, metrics = (probe.getsockname()[1] for probe in probes)
    for probe in probes:
        probe.close()
    command = [
        "timeout", "--foreground", "-k", "10", "3600", sys.executable, "-m", "gantool", "serve", f"gan={model}",
        "--backend", backend, "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
        "--queue-delay-us", str(queue_delay_us), "--max-batch", str(max_batch),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ)
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(f"127.0.0.1:{http}")
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gantool serve exited: {server.stderr.read() if server.stderr else ''}")
        with contextlib.suppress(OSError, InferenceServerException):  # not listening yet
            if client.is_model_ready("gan"):
                break
        time.sleep(0.25)
    else:
        stop_server(server)
        sys.exit(f"gantool serve not ready within {START_LIMIT_S} s")
    client.close()
    return server, {"http": http, "grpc": grpc, "metrics": metrics}


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


if __name__ == "__main__":
    print(
        "| concurrency | in-process req/s | server req/s | server / in-process | in-process p50/p90/p99 ms "
        "| server p50/p90/p99 ms |"
    )
    print("|---|---|---|---|---|---|")
    main()
