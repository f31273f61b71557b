"""``gantool serve`` on a real Triton server (PyTriton's tritonserver), over loopback with tritonclient.

One server for the module serves a tiny GAN (``gan``, ``gan_count``, ``gan_latents``, on onnxruntime) and
both directions of a tiny CycleGAN run (``cg_a2b``, ``cg_b2a``, on torch), with small limits. It runs as
its own process under ``timeout --foreground -k``, listens on 127.0.0.1 only, and is stopped by its PID.
Every wait and every client loop is bounded in count and time.

These tests need the serve extra (PyTriton pins numpy < 2), so CI runs them in an environment of their
own (``.ci/run serve``), where GANTOOL_REQUIRE_SERVE=1 turns a missing extra into a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_checkpoint, make_translator_run, run_cli
from gantool.latents import latent_batch

if os.environ.get("GANTOOL_REQUIRE_SERVE") != "1":
    pytest.importorskip("pytriton", reason="the serve extra is not installed (CI runs these in `.ci/run serve`)")
    pytest.importorskip("tritonclient.grpc", reason="the serve extra is not installed")

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

SERVER_LIMIT_S = 600  # the whole module's server, under timeout -k
START_LIMIT_S = 180
MAX_BATCH, MAX_SIDE, MAX_REQUEST_MB = 16, 700, 1


@dataclass
class Server:
    process: subprocess.Popen[str]
    http_port: int
    grpc_port: int
    metrics_port: int
    gan_run: Path
    cg_run: Path

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def ports(self) -> list[int]:
        return [self.http_port, self.grpc_port, self.metrics_port]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for probe in sockets:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in sockets]
    for probe in sockets:
        probe.close()
    return ports


def wait_until_ready(server: Server, models: list[str]) -> None:
    client = httpclient.InferenceServerClient(server.http)
    deadline = time.monotonic() + START_LIMIT_S
    try:
        for _ in range(int(START_LIMIT_S / 0.25)):
            if server.process.poll() is not None:
                raise AssertionError(f"gantool serve exited with {server.process.returncode}: {server.process.stderr}")
            with contextlib.suppress(OSError, InferenceServerException):  # not listening yet
                if all(client.is_model_ready(model) for model in models):
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
    finally:
        client.close()
    raise AssertionError(f"models not ready within {START_LIMIT_S} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    gan_run = make_checkpoint(root / "gan").parent
    assert run_cli("export", gan_run).exit_code == 0  # the GAN runs on onnxruntime, as deployed
    cg_run = make_translator_run(root / "cg")
    http, grpc, metrics = free_ports(3)
    command = [
        "timeout", "--foreground", "-k", "10", str(SERVER_LIMIT_S), sys.executable, "-m", "gantool", "serve",
        f"gan={gan_run}", f"cg={cg_run}", "--backend", "auto", "--host", "127.0.0.1",
        "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
        "--max-batch", str(MAX_BATCH), "--max-side", str(MAX_SIDE), "--max-request-mb", str(MAX_REQUEST_MB),
        "--queue-delay-us", "2000", "--drain-timeout", "20",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    log = (root / "serve.log").open("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    served = Server(process, http, grpc, metrics, gan_run, cg_run)
    try:
        wait_until_ready(served, ["gan", "gan_count", "gan_latents", "cg_a2b", "cg_b2a"])
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # timeout --foreground passes it to gantool alone
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        log.close()


def generated(run: Path, tmp_path: Path, seed: int, n: int, backend: str) -> np.ndarray:
    out = tmp_path / f"gen_{seed}_{n}.npz"
    result = run_cli("generate", run, "-n", n, "-b", n, "--seed", seed, "--backend", backend, "--out", out)
    assert result.exit_code == 0, result.stderr
    return np.load(out)["images"]


def int_input(module, name: str, values: list[int]):  # module: tritonclient.http or .grpc
    tensor = module.InferInput(name, [len(values), 1], "INT64")
    tensor.set_data_from_numpy(np.array(values, dtype=np.int64).reshape(-1, 1))
    return tensor


def array_input(module, name: str, array: np.ndarray, datatype: str):
    tensor = module.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_gan_returns_what_generate_writes(server: Server, tmp_path: Path, protocol: str) -> None:
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(server.http if protocol == "http" else server.grpc)
    expected = generated(server.gan_run, tmp_path, seed=3, n=12, backend="onnxruntime")  # 12×8×8×1

    by_index = client.infer("gan", [int_input(module, "seed", [3] * 12), int_input(module, "index", list(range(12)))])
    np.testing.assert_array_equal(by_index.as_numpy("images"), expected)

    seed = array_input(module, "seed", np.array([3], np.int64), "INT64")
    count = array_input(module, "count", np.array([12], np.int64), "INT64")
    np.testing.assert_array_equal(client.infer("gan_count", [seed, count]).as_numpy("images"), expected)

    latents = array_input(module, "latents", latent_batch(3, 0, 12, 8), "FP32")
    np.testing.assert_array_equal(client.infer("gan_latents", [latents]).as_numpy("images"), expected)
    client.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_translator_returns_what_translate_keep_size_writes(server: Server, tmp_path: Path, protocol: str) -> None:
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(server.http if protocol == "http" else server.grpc)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (2, 21, 30, 3), dtype=np.uint8)  # odd sides: padded and cropped back
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, image in enumerate(photo):
        Image.fromarray(image).save(inputs / f"{i}.png")
    out = tmp_path / "out"
    result = run_cli("translate", server.cg_run, inputs, "--keep-size", "--backend", "torch", "--out", out)
    assert result.exit_code == 0, result.stderr
    expected = np.stack([np.asarray(Image.open(out / f"{i}.png")) for i in range(2)])

    answer = client.infer("cg_a2b", [array_input(module, "images", photo, "UINT8")])
    np.testing.assert_array_equal(answer.as_numpy("images"), expected)
    client.close()


def test_many_clients_are_served_and_batched(server: Server) -> None:
    threads, requests = 8, 100
    failures: list[str] = []
    deadline = time.monotonic() + 120

    def client_loop(worker: int) -> None:
        client = httpclient.InferenceServerClient(server.http)
        try:
            for i in range(requests):
                if time.monotonic() > deadline:
                    failures.append(f"worker {worker}: out of time at request {i}")
                    return
                index = worker * requests + i
                answer = client.infer(
                    "gan", [int_input(httpclient, "seed", [0]), int_input(httpclient, "index", [index])]
                )
                if answer.as_numpy("images").shape != (1, 8, 8, 1):
                    failures.append(f"worker {worker}: shape {answer.as_numpy('images').shape}")
        except Exception as exc:  # noqa: BLE001 - any error at all is the finding
            failures.append(f"worker {worker}: {exc}")
        finally:
            client.close()

    before = _statistics(server, "gan")
    workers = [threading.Thread(target=client_loop, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert not failures, failures[:5]
    after = _statistics(server, "gan")
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == threads * requests
    assert executions < inferences, f"no batching: {executions} executions for {inferences} inferences"


def _statistics(server: Server, model: str) -> dict[str, int]:
    client = httpclient.InferenceServerClient(server.http)
    stats = client.get_inference_statistics(model)["model_stats"][0]
    client.close()
    return {key: int(stats.get(key, 0)) for key in ("inference_count", "execution_count")}


BAD_REQUESTS = {
    "wrong dtype": ("gan", lambda m: [array_input(m, "seed", np.zeros((1, 1), np.float32), "FP32"),
                                      int_input(m, "index", [0])]),
    "wrong rank": ("gan", lambda m: [array_input(m, "seed", np.zeros((1, 1, 1), np.int64), "INT64"),
                                     int_input(m, "index", [0])]),
    "wrong shape": ("gan_latents", lambda m: [array_input(m, "latents", np.zeros((1, 9), np.float32), "FP32")]),
    "batch over the limit": ("gan", lambda m: [int_input(m, "seed", [0] * (MAX_BATCH + 1)),
                                               int_input(m, "index", list(range(MAX_BATCH + 1)))]),
    "count over the limit": ("gan_count", lambda m: [array_input(m, "seed", np.array([0], np.int64), "INT64"),
                                                     array_input(m, "count", np.array([MAX_BATCH + 1], np.int64),
                                                                 "INT64")]),
    "negative seed": ("gan", lambda m: [int_input(m, "seed", [-1]), int_input(m, "index", [0])]),
    "non-finite latents": ("gan_latents", lambda m: [array_input(m, "latents", np.full((1, 8), np.nan, np.float32),
                                                                 "FP32")]),
    "sides over the limit": ("cg_a2b", lambda m: [array_input(m, "images", np.zeros((1, 8, MAX_SIDE + 1, 3),
                                                                                    np.uint8), "UINT8")]),
    "five channels": ("cg_a2b", lambda m: [array_input(m, "images", np.zeros((1, 8, 8, 5), np.uint8), "UINT8")]),
    "a zero side": ("cg_a2b", lambda m: [array_input(m, "images", np.zeros((1, 0, 8, 3), np.uint8), "UINT8")]),
    "oversized body": ("cg_a2b", lambda m: [array_input(m, "images", np.zeros((1, 650, 650, 3), np.uint8), "UINT8")]),
    "unknown model": ("no_such_model", lambda m: [int_input(m, "seed", [0]), int_input(m, "index", [0])]),
}  # fmt: skip


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_bad_request_gets_an_error_and_the_server_carries_on(server: Server, protocol: str, case: str) -> None:
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(server.http if protocol == "http" else server.grpc)
    model, inputs = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException):
        client.infer(model, inputs(module))
    _answers_a_good_request(client, module)
    client.close()


def test_an_unknown_output_is_refused(server: Server) -> None:
    client = httpclient.InferenceServerClient(server.http)
    inputs = [int_input(httpclient, "seed", [0]), int_input(httpclient, "index", [0])]
    with pytest.raises(InferenceServerException):
        client.infer("gan", inputs, outputs=[httpclient.InferRequestedOutput("nope")])
    _answers_a_good_request(client, httpclient)
    client.close()


@pytest.mark.parametrize("body", [b"\x00\xff garbage \x13" * 10, b'{"inputs": [', b"{}"])
def test_garbage_bytes_get_an_error_and_the_server_carries_on(server: Server, body: bytes) -> None:
    request = urllib.request.Request(
        f"http://{server.http}/v2/models/gan/infer", data=body, method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code >= 400  # Triton answers 400 for JSON it can parse but not use, 500 for garbage
    assert b"error" in refused.value.read()
    client = httpclient.InferenceServerClient(server.http)
    _answers_a_good_request(client, httpclient)
    client.close()


def test_health_and_readiness_endpoints(server: Server) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/gan/ready", "/v2/models/cg_b2a/ready"):
        with urllib.request.urlopen(f"http://{server.http}{path}", timeout=30) as response:
            assert response.status == 200, path


def _answers_a_good_request(client, module) -> None:
    answer = client.infer("gan", [int_input(module, "seed", [0]), int_input(module, "index", [0])])
    assert answer.as_numpy("images").shape == (1, 8, 8, 1)


def test_sigterm_drains_the_requests_in_flight_exits_0_and_frees_the_ports(server: Server) -> None:
    """Last in the module: it stops the shared server."""
    client = httpclient.InferenceServerClient(server.http, concurrency=8)
    batch = np.zeros((4, 200, 200, 3), np.uint8)  # 480 KB, under the 1 MiB limit
    pending = [client.async_infer("cg_b2a", [array_input(httpclient, "images", batch, "UINT8")]) for _ in range(8)]
    time.sleep(0.2)  # the requests are on their way
    server.process.send_signal(signal.SIGTERM)
    answers = [request.get_result(timeout=120) for request in pending]
    assert all(answer.as_numpy("images").shape == batch.shape for answer in answers)
    client.close()
    assert server.process.wait(timeout=90) == 0
    for port in server.ports():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))  # raises if anything still listens there
