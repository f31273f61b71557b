"""``gantool serve``'s refusals: one line, exit 2, before any model loads or any server starts.

These need no server and no serve extra, so they run in the main suite (and again beside the serve tests).
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest

from conftest import make_checkpoint, run_cli
from gantool.runtime.serve.limits import Limits, RequestError
from gantool.runtime.serve.server import preferred_batches


def refused(*args: str | Path) -> str:
    result = run_cli("serve", *args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    assert "no such run dir or file" in refused(tmp_path / "nothing")


def test_a_name_triton_cannot_take_is_refused(tiny_checkpoint: Path) -> None:
    assert "cannot name a Triton model" in refused(f"my model!={tiny_checkpoint.parent}")


def test_an_unknown_transfer_is_refused(tiny_checkpoint: Path) -> None:
    assert "--transfer must be one of" in refused(tiny_checkpoint.parent, "--transfer", "carrier-pigeon")


def test_a_port_in_use_is_refused_before_anything_loads(tiny_checkpoint: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused(tiny_checkpoint.parent, "--http-port", str(port))
    assert f"--http-port {port}: cannot listen on 127.0.0.1:{port}" in line


def test_the_same_port_twice_is_refused(tiny_checkpoint: Path) -> None:
    assert "each needs a port of its own" in refused(tiny_checkpoint.parent, "--grpc-port", "8000")


@pytest.mark.skipif(importlib.util.find_spec("pytriton") is not None, reason="the serve extra is installed here")
def test_without_the_serve_extra_it_says_what_to_install(tmp_path: Path) -> None:
    run = make_checkpoint(tmp_path / "run").parent
    http, grpc, metrics = _free_ports()
    line = refused(run, "--http-port", http, "--grpc-port", grpc, "--metrics-port", metrics)
    assert 'pip install "gantool[serve]"' in line


def test_limits_refuse_what_a_request_may_not_ask() -> None:
    limits = Limits(max_batch=4, max_side=16, max_request_bytes=1000)
    limits.check_images(np.zeros((2, 16, 9, 3), np.uint8))  # within every limit
    for images in (np.zeros((1, 17, 8, 3), np.uint8), np.zeros((1, 8, 8, 5), np.uint8),
                   np.zeros((1, 0, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.float32)):  # fmt: skip
        with pytest.raises(RequestError):
            limits.check_images(images)
    with pytest.raises(RequestError, match="over the server's limit of 1000"):
        limits.check_bytes({"images": np.zeros(1001, np.uint8)})
    with pytest.raises(RequestError, match=r"count must be in \[1, 4\]"):
        limits.check_count(5, "count")


def test_the_batcher_aims_at_powers_of_two_up_to_the_max() -> None:
    assert preferred_batches(64) == [4, 8, 16, 32, 64]
    assert preferred_batches(10) == [4, 8, 10]
    assert preferred_batches(1) == [1]


def _free_ports() -> list[str]:
    probes = [socket.socket() for _ in range(3)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    ports = [str(probe.getsockname()[1]) for probe in probes]
    for probe in probes:
        probe.close()
    return ports
