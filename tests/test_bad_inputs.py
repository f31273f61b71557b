"""The bad-input matrix: every command × every kind of file it reads × every way that file can be bad.

Each row names a command line, the damage done to a copy of genuine artifacts
before it runs (missing, empty, truncated, garbage, mutated: bytes flipped, a
spec field changed, an unknown key, absurd sizes), or an absurd argument (zero,
negative, huge, wrong type, a file where a folder belongs and the reverse), and
the exit status expected. Every row must fail the same way:

* the exit status is the expected one (2: a usage error, 1: a bad file or environment);
* stderr holds no traceback (no line contains "Traceback"), its last line starts
  with "error: " and is the only such line; lines before it are allowed only as
  the progress and info lines a command prints while it works ("backend: ...",
  "skipped x.png: ...") — so the user reads exactly one error, in one line;
* nothing is created or modified: the case's workspace (the inputs and every
  output location) holds the same files and folders after, each file with the
  same size and mtime (a folder's own mtime may change: staging an output
  beside it and removing it again leaves it as it was).

Genuine artifacts are built once per module (a tiny trained GAN run with its
ONNX exports and training state, a tiny CycleGAN run with an export, a
pytorch-CycleGAN-style .pth, a bench report) and copied into each case's
workspace, where the damage is done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import make_translator_run

Prepare = Callable[[Path], None]
TINY_GAN = ["--hidden", "16,32", "--latent-dim", "8", "--device", "cpu", "--batch-size", "256"]
FAST_BENCH = ["--batch-sizes", "1", "--min-runs", "1", "--max-s", "0", "--warmup-s", "0"]


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gan/ (trained 1 epoch, exported), cyc/ (both translators, a2b exported), g_a.pth, report.json, images/."""
    import torch
    from PIL import Image
    from typer.testing import CliRunner

    from gantool.cli import app
    from gantool.export.onnx_export import export_checkpoint
    from gantool.models import ResnetGenerator

    root = tmp_path_factory.mktemp("genuine")
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "gan", "--out", str(root / "gan"), "--epochs", "1", *TINY_GAN])
    assert trained.exit_code == 0, trained.stderr
    export_checkpoint(root / "gan" / "generator.safetensors", root / "gan")
    make_translator_run(root / "cyc")
    export_checkpoint(root / "cyc" / "generator_a2b.safetensors", root / "cyc")
    torch.save(ResnetGenerator(3, 4, 1).state_dict(), root / "latest_net_G_A.pth")
    (root / "images").mkdir()
    for i in range(2):
        Image.new("RGB", (20, 20), (40 * i, 80, 120)).save(root / "images" / f"photo_{i}.png")
    bench = runner.invoke(
        app,
        [
            "bench",
            str(root / "gan" / "generator.onnx"),
            *FAST_BENCH,
            "--backends",
            "onnxruntime",
            "--json",
            str(root / "report.json"),
        ],
    )
    assert bench.exit_code == 0, bench.stderr
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``root``: relative path → (size, mtime in ns) of a file, (-1, 0) of a folder.

    A folder's own mtime is left out: it changes when a command stages an output
    beside it and removes the staging again, which leaves the folder as it was.
    """
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else (-1, 0)
        for path in sorted(root.rglob("*"))
    }


def assert_one_error_line(stderr: str) -> str:
    """The rule of the module docstring; returns the error line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and not any("Traceback" in line for line in lines), stderr
    assert lines[-1].startswith("error: ") and sum(line.startswith("error: ") for line in lines) == 1, stderr
    return lines[-1]


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_safetensors(path: Path, changes: dict[str, Any], shape: list[int] | None = None) -> None:
    """Change spec fields in a checkpoint's header; ``shape``: also claim that shape for its first tensor."""
    import struct

    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    spec = json.loads(header["__metadata__"]["gantool.spec"]) | changes
    header["__metadata__"]["gantool.spec"] = json.dumps(spec)
    if shape is not None:
        header[min(key for key in header if key != "__metadata__")]["shape"] = shape
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + size :])


def edit_onnx_spec(path: Path, changes: dict[str, Any], external: bool = False) -> None:
    """Change spec fields in an ONNX file's metadata; ``external``: also point a weight at an outside file."""
    import onnx

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "gantool.spec":
            prop.value = json.dumps(json.loads(prop.value) | changes)
    if external:
        tensor = model.graph.initializer[0]
        tensor.data_location = onnx.TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "/etc/passwd"
        tensor.ClearField("raw_data")
    path.write_bytes(model.SerializeToString())


H100 = ("10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0", "12.9", "12.9")


def write_engine_with_sidecar(run: Path, edit: Callable[[dict[str, Any]], Any] | None, plan: bytes | None) -> None:
    """A fake plan with the sidecar export --trt writes for it, the sidecar optionally edited, the plan swapped."""
    from gantool.checkpoint import read_spec
    from gantool.engines import EngineInfo, MachineFacts, profile_for, sidecar_path
    from gantool.runtime.backends.tensorrt_backend import sha256_bytes

    spec = read_spec(run / "generator.safetensors")
    engine = run / "generator.fp16.engine"
    engine.write_bytes(b"a plan")
    info = EngineInfo(
        spec=spec,
        precision="fp16",
        profile=profile_for(spec, "z", "images"),
        built_on=MachineFacts(*H100),
        source_onnx="/etc/shadow",
        source_sha256="0" * 64,
        engine_sha256=sha256_bytes(b"a plan"),
        max_abs_diff=0.003,
    )
    data = json.loads(info.to_json())
    sidecar_path(engine).write_text(json.dumps(edit(data) if edit else data))
    if plan is not None:
        engine.write_bytes(plan)


def pretend_tensorrt_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorRT 'installed' on an H100: the sidecar checks run for real; deserialising a plan would fail the test."""
    import types

    from gantool.engines import MachineFacts
    from gantool.runtime.backends import tensorrt_backend
    from gantool.runtime.backends.base import Availability

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a bad engine reached TensorRT")

    backend = tensorrt_backend.TensorrtBackend
    monkeypatch.setattr(backend, "availability", classmethod(lambda cls: Availability(True)))
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: types.SimpleNamespace(__version__=H100[0]))
    monkeypatch.setattr(tensorrt_backend, "machine_facts", lambda trt: MachineFacts(*H100))
    monkeypatch.setattr(tensorrt_backend, "EngineRunner", never)


# --- damage ---------------------------------------------------------------------------------------------------


def empty(name: str) -> Prepare:
    return lambda ws: (ws / name).write_bytes(b"")


def truncated(name: str) -> Prepare:
    return lambda ws: (ws / name).write_bytes((ws / name).read_bytes()[: (ws / name).stat().st_size // 2])


def garbage(name: str) -> Prepare:
    return lambda ws: (ws / name).write_bytes(bytes((i * 151 + 7) % 256 for i in range(4096)))


def flipped(name: str, offset: int = 40) -> Prepare:
    return lambda ws: flip(ws / name, offset)


def removed(name: str) -> Prepare:
    return lambda ws: (ws / name).unlink()


def text(name: str, content: str) -> Prepare:
    def prepare(ws: Path) -> None:
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(content)

    return prepare


def spec_edit(name: str, **changes: Any) -> Prepare:
    """Change fields of the spec inside a checkpoint (safetensors header) or an ONNX file (metadata)."""
    edit = edit_onnx_spec if name.endswith(".onnx") else edit_safetensors
    return lambda ws: edit(ws / name, changes)


def state_edit(change: Callable[[dict[str, Any]], Any]) -> Prepare:
    """Rewrite gan/train_state.pt with ``change(state)`` (a genuine torch file with other content)."""

    def prepare(ws: Path) -> None:
        import torch

        path = ws / "gan" / "train_state.pt"
        torch.save(change(torch.load(path, weights_only=True)), path)

    return prepare


class RunsCode:
    """A pickle whose loading would run code: it would create the file named in the test's workspace."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def carrying_code(name: str) -> Prepare:
    def prepare(ws: Path) -> None:
        import torch

        torch.save({"format": "gantool.train_state", "payload": RunsCode(ws.parent / "pwned")}, ws / name)

    return prepare


def idx(content: bytes, name: str = "train-images-idx3-ubyte") -> Prepare:
    return lambda ws: ((ws / "mnist").mkdir(), (ws / "mnist" / name).write_bytes(content))


def idx_header(count: int, rows: int = 28, cols: int = 28) -> bytes:
    return (0x803).to_bytes(4, "big") + count.to_bytes(4, "big") + rows.to_bytes(4, "big") + cols.to_bytes(4, "big")


def folder(*files: tuple[str, bytes]) -> Prepare:
    def prepare(ws: Path) -> None:
        for name, content in files:
            (ws / "data" / name).parent.mkdir(parents=True, exist_ok=True)
            (ws / "data" / name).write_bytes(content)

    return prepare


def report_edit(change: Callable[[dict[str, Any]], Any]) -> Prepare:
    def prepare(ws: Path) -> None:
        (ws / "report.json").write_text(json.dumps(change(json.loads((ws / "report.json").read_text()))))

    return prepare


def engine(sidecar: Callable[[dict[str, Any]], Any] | None = None, plan: bytes | None = None) -> Prepare:
    return lambda ws: write_engine_with_sidecar(ws / "gan", sidecar, plan)


def nothing(ws: Path) -> None:
    """No damage: the arguments are what is wrong."""


JUNK = b"\x00\xffnot this kind of file at all\x17" * 40
HUGE = str(10**30)
GEN, TRANSLATE, EXPORT, BENCH = ("generate",), ("translate",), ("export",), ("bench",)
TRAIN_GAN, TRAIN_CYC, IMPORT = (
    ("train", "gan", "--out", "{ws}/newrun"),
    ("train", "cyclegan", "--out", "{ws}/newrun"),
    ("import", "cyclegan"),
)
RESUME_GAN = ("train", "gan", "--out", "{ws}/gan", "--resume", "--epochs", "3")
RESUME_CYC = ("train", "cyclegan", "--out", "{ws}/gan", "--resume", "--epochs", "3")
TORCH, ORT = ("--backend", "torch"), ("--backend", "onnxruntime")
OUT = ("--out", "{ws}/out")
CKPT, ONNX, FP16 = "gan/generator.safetensors", "gan/generator.onnx", "gan/generator.fp16.onnx"
A2B, A2B_ONNX = "cyc/generator_a2b.safetensors", "cyc/generator_a2b.onnx"
ABSURD_MLP = {"arch_params": {"hidden": [16384] * 8}, "channels": 3, "height": 4096, "width": 4096}
ABSURD_RESNET = {"arch_params": {"ngf": 1024, "blocks": 64}}

# id → (command line with {ws} for the case's workspace, damage, expected exit status)
CASES: dict[str, tuple[tuple[str, ...], Prepare, int]] = {
    # generate × checkpoint
    "generate ckpt missing": ((*GEN, "{ws}/gan/nothing.safetensors", *OUT, *TORCH), nothing, 1),
    "generate ckpt empty": ((*GEN, "{ws}/" + CKPT, *OUT, *TORCH), empty(CKPT), 1),
    "generate ckpt truncated": ((*GEN, "{ws}/" + CKPT, *OUT, *TORCH), truncated(CKPT), 1),
    "generate ckpt garbage": ((*GEN, "{ws}/" + CKPT, *OUT, *TORCH), garbage(CKPT), 1),
    "generate ckpt header flipped": ((*GEN, "{ws}/" + CKPT, *OUT, *TORCH), flipped(CKPT, 20), 1),
    "generate ckpt spec unknown key": ((*GEN, "{ws}/gan", *OUT, *TORCH), spec_edit(CKPT, evil="rm -rf /"), 1),
    "generate ckpt spec absurd size": ((*GEN, "{ws}/gan", *OUT, *TORCH), spec_edit(CKPT, **ABSURD_MLP), 1),
    "generate ckpt spec dcgan 30x30": (
        (*GEN, "{ws}/gan", *OUT, *TORCH),
        spec_edit(CKPT, arch="dcgan", arch_params={"ngf": 4}, height=30, width=30),
        1,
    ),
    "generate ckpt spec contradicts weights": ((*GEN, "{ws}/gan", *OUT, *TORCH), spec_edit(CKPT, latent_dim=9), 1),
    "generate ckpt tensor claims 10^12 elements": (
        (*GEN, "{ws}/gan", *OUT, *TORCH),
        lambda ws: edit_safetensors(ws / CKPT, {}, shape=[10**6, 10**6]),
        1,
    ),
    # generate × ONNX and FP16 ONNX
    "generate onnx missing": ((*GEN, "{ws}/gan/nothing.onnx", *OUT), nothing, 1),
    "generate onnx empty": ((*GEN, "{ws}/" + ONNX, *OUT), empty(ONNX), 1),
    "generate onnx truncated": ((*GEN, "{ws}/" + ONNX, *OUT), truncated(ONNX), 1),
    "generate onnx garbage": ((*GEN, "{ws}/" + ONNX, *OUT), garbage(ONNX), 1),
    "generate onnx spec unknown key": ((*GEN, "{ws}/" + ONNX, *OUT), spec_edit(ONNX, evil=1), 1),
    "generate onnx spec absurd latent": ((*GEN, "{ws}/" + ONNX, *OUT), spec_edit(ONNX, latent_dim=10**9), 1),
    "generate onnx spec contradicts graph": ((*GEN, "{ws}/" + ONNX, *OUT), spec_edit(ONNX, latent_dim=9), 1),
    "generate onnx spec wrong image size": ((*GEN, "{ws}/" + ONNX, *OUT), spec_edit(ONNX, height=32, width=32), 1),
    "generate onnx external data": ((*GEN, "{ws}/" + ONNX, *OUT), lambda ws: edit_onnx_spec(ws / ONNX, {}, True), 1),
    "generate fp16 onnx empty": ((*GEN, "{ws}/gan", *OUT, *ORT, "--precision", "fp16"), empty(FP16), 1),
    "generate fp16 onnx garbage": ((*GEN, "{ws}/gan", *OUT, *ORT, "--precision", "fp16"), garbage(FP16), 1),
    "generate fp16 onnx truncated": ((*GEN, "{ws}/gan", *OUT, *ORT, "--precision", "fp16"), truncated(FP16), 1),
    # generate × engine and its sidecar (TensorRT faked as installed: the sidecar is checked before TensorRT runs)
    "generate engine sidecar missing": (
        (*GEN, "{ws}/gan/generator.fp16.engine", *OUT, "--backend", "tensorrt", "--device", "cuda"),
        lambda ws: (engine()(ws), (ws / "gan/generator.fp16.engine.json").unlink()),
        1,
    ),
    "generate engine sidecar garbage": (
        (*GEN, "{ws}/gan/generator.fp16.engine", *OUT, "--backend", "tensorrt", "--device", "cuda"),
        lambda ws: (engine()(ws), garbage("gan/generator.fp16.engine.json")(ws)),
        1,
    ),
    "generate engine sidecar unknown key": (
        (*GEN, "{ws}/gan/generator.fp16.engine", *OUT, "--backend", "tensorrt", "--device", "cuda"),
        engine(lambda data: data | {"evil": 1}),
        1,
    ),
    "generate engine sidecar absurd batch": (
        (*GEN, "{ws}/gan/generator.fp16.engine", *OUT, "--backend", "tensorrt", "--device", "cuda"),
        engine(lambda data: data | {"profile": data["profile"] | {"max": [10**9, 8]}}),
        1,
    ),
    "generate engine swapped plan": (
        (*GEN, "{ws}/gan/generator.fp16.engine", *OUT, "--backend", "tensorrt", "--device", "cuda"),
        engine(plan=b"another plan"),
        1,
    ),
    # generate × arguments
    "generate -n 0": ((*GEN, "{ws}/gan", *OUT, "-n", "0"), nothing, 2),
    "generate -n negative": ((*GEN, "{ws}/gan", *OUT, "-n", "-5"), nothing, 2),
    "generate -n not a number": ((*GEN, "{ws}/gan", *OUT, "-n", "many"), nothing, 2),
    "generate --batch-size 0": ((*GEN, "{ws}/gan", *OUT, "-b", "0"), nothing, 2),
    "generate --seed negative": ((*GEN, "{ws}/gan", *OUT, "--seed", "-1"), nothing, 2),
    "generate --backend unknown": ((*GEN, "{ws}/gan", *OUT, "--backend", "magic"), nothing, 2),
    "generate --device unknown": ((*GEN, "{ws}/gan", *OUT, "--device", "tpu"), nothing, 2),
    "generate --precision unknown": ((*GEN, "{ws}/gan", *OUT, "--precision", "fp8"), nothing, 2),
    "generate --out .jpg": ((*GEN, "{ws}/gan", "--out", "{ws}/samples.jpg"), nothing, 2),
    "generate --out exists": ((*GEN, "{ws}/gan", "--out", "{ws}/gan/run.json"), nothing, 2),
    "generate --out under a file": ((*GEN, "{ws}/gan", "--out", "{ws}/gan/run.json/out"), nothing, 2),
    "generate model is a folder without a run": ((*GEN, "{ws}/images", *OUT), nothing, 1),
    "generate model is a text file": ((*GEN, "{ws}/gan/run.json", *OUT), nothing, 1),
    "generate a translator": ((*GEN, "{ws}/cyc", *OUT), nothing, 2),
    # translate × checkpoint, ONNX, images, arguments
    "translate ckpt garbage": ((*TRANSLATE, "{ws}/" + A2B, "{ws}/images", *OUT, *TORCH), garbage(A2B), 1),
    "translate ckpt truncated": ((*TRANSLATE, "{ws}/" + A2B, "{ws}/images", *OUT, *TORCH), truncated(A2B), 1),
    "translate ckpt spec absurd network": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, *TORCH),
        spec_edit(A2B, **ABSURD_RESNET),
        1,
    ),
    "translate ckpt spec unknown key": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, *TORCH),
        spec_edit(A2B, evil=1),
        1,
    ),
    "translate onnx garbage": ((*TRANSLATE, "{ws}/" + A2B_ONNX, "{ws}/images", *OUT), garbage(A2B_ONNX), 1),
    "translate onnx spec contradicts graph": (
        (*TRANSLATE, "{ws}/" + A2B_ONNX, "{ws}/images", *OUT),
        spec_edit(A2B_ONNX, channels=1),
        1,
    ),
    "translate images all empty": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT),
        lambda ws: [p.write_bytes(b"") for p in (ws / "images").iterdir()],
        1,
    ),
    "translate images all garbage": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT),
        lambda ws: [garbage(str(p.relative_to(ws)))(ws) for p in (ws / "images").iterdir()],
        1,
    ),
    "translate images truncated": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT),
        lambda ws: [truncated(str(p.relative_to(ws)))(ws) for p in (ws / "images").iterdir()],
        1,
    ),
    "translate input missing": ((*TRANSLATE, "{ws}/cyc", "{ws}/nope.png", *OUT), nothing, 2),
    "translate glob matches nothing": ((*TRANSLATE, "{ws}/cyc", "{ws}/images/*.webp", *OUT), nothing, 2),
    "translate input folder without images": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/cyc/samples_none", *OUT),
        lambda ws: (ws / "cyc/samples_none").mkdir(),
        2,
    ),
    "translate --size 0": ((*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--size", "0"), nothing, 2),
    "translate --size 6": ((*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--size", "6"), nothing, 2),
    "translate --size not a number": ((*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--size", "big"), nothing, 2),
    "translate --size with --keep-size": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--size", "16", "--keep-size"),
        nothing,
        2,
    ),
    "translate --keep-size with --round-size": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--keep-size", "--round-size"),
        nothing,
        2,
    ),
    "translate --reduced-jpeg at each image's size": (
        (*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--round-size", "--reduced-jpeg"),
        nothing,
        2,
    ),
    "translate --batch-size 0": ((*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "-b", "0"), nothing, 2),
    "translate --direction unknown": ((*TRANSLATE, "{ws}/cyc", "{ws}/images", *OUT, "--direction", "up"), nothing, 2),
    "translate --out is a file": ((*TRANSLATE, "{ws}/cyc", "{ws}/images", "--out", "{ws}/report.json"), nothing, 2),
    "translate a GAN": ((*TRANSLATE, "{ws}/gan", "{ws}/images", *OUT), nothing, 2),
    # export × checkpoint and ONNX (--trt), arguments
    "export ckpt empty": ((*EXPORT, "{ws}/" + CKPT, *OUT), empty(CKPT), 1),
    "export ckpt garbage": ((*EXPORT, "{ws}/" + CKPT, *OUT), garbage(CKPT), 1),
    "export ckpt truncated": ((*EXPORT, "{ws}/" + CKPT, *OUT), truncated(CKPT), 1),
    "export ckpt spec unknown key": ((*EXPORT, "{ws}/gan", *OUT), spec_edit(CKPT, evil=1), 1),
    "export ckpt spec absurd size": ((*EXPORT, "{ws}/gan", *OUT), spec_edit(CKPT, **ABSURD_MLP), 1),
    "export ckpt tensor claims 10^12 elements": (
        (*EXPORT, "{ws}/gan", *OUT),
        lambda ws: edit_safetensors(ws / CKPT, {}, shape=[10**6, 10**6]),
        1,
    ),
    "export translator spec absurd network": ((*EXPORT, "{ws}/cyc", *OUT), spec_edit(A2B, **ABSURD_RESNET), 1),
    "export run dir without checkpoint": ((*EXPORT, "{ws}/images"), nothing, 1),
    "export onnx without --trt": ((*EXPORT, "{ws}/" + ONNX), nothing, 2),
    "export --opset 0": ((*EXPORT, "{ws}/gan", *OUT, "--opset", "0"), nothing, 2),
    "export --opset not a number": ((*EXPORT, "{ws}/gan", *OUT, "--opset", "new"), nothing, 2),
    "export --out is a file": ((*EXPORT, "{ws}/gan", "--out", "{ws}/report.json"), nothing, 2),
    "export --workspace-mb without --trt": ((*EXPORT, "{ws}/gan", "--workspace-mb", "64"), nothing, 2),
    "export --trt onnx garbage": ((*EXPORT, "{ws}/" + ONNX, "--trt"), garbage(ONNX), 1),
    "export --trt fp16 onnx truncated": ((*EXPORT, "{ws}/" + FP16, "--trt"), truncated(FP16), 1),
    "export --trt onnx spec unknown key": ((*EXPORT, "{ws}/" + ONNX, "--trt"), spec_edit(ONNX, evil=1), 1),
    "export --trt --max-batch 0": ((*EXPORT, "{ws}/gan", "--trt", "--max-batch", "0"), nothing, 2),
    "export --trt --min-batch negative": ((*EXPORT, "{ws}/gan", "--trt", "--min-batch", "-1"), nothing, 2),
    "export --trt --max-batch huge": ((*EXPORT, "{ws}/gan", "--trt", "--max-batch", HUGE), nothing, 2),
    "export --trt --opt-size junk": ((*EXPORT, "{ws}/cyc", "--trt", "--opt-size", "wide"), nothing, 2),
    "export --trt --workspace-mb huge": ((*EXPORT, "{ws}/gan", "--trt", "--workspace-mb", HUGE), nothing, 2),
    "export --trt --opt-level 99": ((*EXPORT, "{ws}/gan", "--trt", "--opt-level", "99"), nothing, 2),
    "export --trt --timing-cache is a folder": (
        (*EXPORT, "{ws}/gan", "--trt", "--timing-cache", "{ws}/images"),
        nothing,
        2,
    ),
    # train gan × image folders, MNIST IDX files, resume state, arguments
    "train gan folder missing": ((*TRAIN_GAN, "--dataset", "{ws}/data"), nothing, 2),
    "train gan folder is a file": ((*TRAIN_GAN, "--dataset", "{ws}/report.json"), nothing, 2),
    "train gan folder without images": ((*TRAIN_GAN, "--dataset", "{ws}/data"), folder(("notes.txt", b"x")), 2),
    "train gan folder of garbage images": (
        (*TRAIN_GAN, "--dataset", "{ws}/data"),
        folder(("a.png", JUNK), ("b.jpg", b""), ("c.gif", JUNK[:9])),
        2,
    ),
    "train gan mnist missing": ((*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"), nothing, 2),
    "train gan mnist empty": ((*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"), idx(b""), 1),
    "train gan mnist garbage": ((*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"), idx(JUNK), 1),
    "train gan mnist truncated": (
        (*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"),
        idx(idx_header(5) + bytes(100)),
        1,
    ),
    "train gan mnist absurd count": (
        (*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"),
        idx(idx_header(2**31) + bytes(784)),
        1,
    ),
    "train gan mnist zero-sized images": (
        (*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"),
        idx(idx_header(1, 0, 0)),
        1,
    ),
    "train gan mnist gz garbage": (
        (*TRAIN_GAN, "--dataset", "mnist", "--data-dir", "{ws}/mnist"),
        idx(b"\x1f\x8b\x08" + JUNK, "train-images-idx3-ubyte.gz"),
        1,
    ),
    "train gan resume state empty": (RESUME_GAN, empty("gan/train_state.pt"), 1),
    "train gan resume state truncated": (RESUME_GAN, truncated("gan/train_state.pt"), 1),
    "train gan resume state garbage": (RESUME_GAN, garbage("gan/train_state.pt"), 1),
    "train gan resume state carries code": (RESUME_GAN, carrying_code("gan/train_state.pt"), 1),
    "train gan resume state version 99": (RESUME_GAN, state_edit(lambda s: s | {"version": 99}), 1),
    "train gan resume state of a cyclegan": (RESUME_GAN, state_edit(lambda s: s | {"kind": "cyclegan"}), 2),
    "train gan resume state epoch is text": (RESUME_GAN, state_edit(lambda s: s | {"epoch": "seven"}), 1),
    "train gan resume state epoch negative": (RESUME_GAN, state_edit(lambda s: s | {"epoch": -4}), 1),
    "train gan resume state without epoch": (RESUME_GAN, state_edit(lambda s: s.pop("epoch") and s), 1),
    "train gan resume state without generator": (RESUME_GAN, state_edit(lambda s: s.pop("generator") and s), 1),
    "train gan resume state config unknown key": (
        RESUME_GAN,
        state_edit(lambda s: s | {"config": s["config"] | {"evil": 1}}),
        1,
    ),
    "train gan resume state not a dict": (RESUME_GAN, state_edit(lambda s: [1, 2, 3]), 1),
    "train gan --resume --force": ((*RESUME_GAN, "--force"), nothing, 2),
    "train gan --epochs 0": ((*TRAIN_GAN, "--epochs", "0"), nothing, 2),
    "train gan --batch-size 0": ((*TRAIN_GAN, "--batch-size", "0"), nothing, 2),
    "train gan --batch-size huge": ((*TRAIN_GAN, "--batch-size", HUGE), nothing, 2),
    "train gan --lr negative": ((*TRAIN_GAN, "--lr", "-0.1"), nothing, 2),
    "train gan --lr nan": ((*TRAIN_GAN, "--lr", "nan"), nothing, 2),
    "train gan --ema 1": ((*TRAIN_GAN, "--ema", "1"), nothing, 2),
    "train gan --hidden junk": ((*TRAIN_GAN, "--hidden", "16,wide"), nothing, 2),
    "train gan --hidden too wide": ((*TRAIN_GAN, "--hidden", "99999"), nothing, 2),
    "train gan --latent-dim huge": ((*TRAIN_GAN, "--latent-dim", "5000"), nothing, 2),
    "train gan --image-size 0": ((*TRAIN_GAN, "--image-size", "0"), nothing, 2),
    "train gan --seed negative": ((*TRAIN_GAN, "--seed", "-1"), nothing, 2),
    "train gan --out is a file": (("train", "gan", "--out", "{ws}/report.json"), nothing, 2),
    "train gan --out is a run": (("train", "gan", "--out", "{ws}/gan"), nothing, 2),
    # train cyclegan × folders, resume state, arguments
    "train cyclegan folder missing": ((*TRAIN_CYC, "--dataset", "{ws}/data"), nothing, 2),
    "train cyclegan folder without trainA": ((*TRAIN_CYC, "--dataset", "{ws}/data"), folder(("trainB/b.png", JUNK)), 2),
    "train cyclegan trainA is a file": (
        (*TRAIN_CYC, "--dataset", "{ws}/data"),
        folder(("trainA", b"x"), ("trainB/b.png", JUNK)),
        2,
    ),
    "train cyclegan garbage images": (
        (*TRAIN_CYC, "--dataset", "{ws}/data", "--size", "24"),
        folder(("trainA/a.png", JUNK), ("trainB/b.jpg", b"")),
        2,
    ),
    "train cyclegan resume state garbage": (RESUME_CYC, garbage("gan/train_state.pt"), 1),
    "train cyclegan resume state of a gan": (RESUME_CYC, nothing, 2),
    "train cyclegan --size 0": ((*TRAIN_CYC, "--size", "0"), nothing, 2),
    "train cyclegan --size 26": ((*TRAIN_CYC, "--size", "26"), nothing, 2),
    "train cyclegan --size negative": ((*TRAIN_CYC, "--size", "-4"), nothing, 2),
    "train cyclegan --blocks 0": ((*TRAIN_CYC, "--blocks", "0"), nothing, 2),
    "train cyclegan --pool-size negative": ((*TRAIN_CYC, "--pool-size", "-1"), nothing, 2),
    "train cyclegan --lambda-cycle negative": ((*TRAIN_CYC, "--lambda-cycle", "-1"), nothing, 2),
    "train cyclegan --epochs not a number": ((*TRAIN_CYC, "--epochs", "ten"), nothing, 2),
    # import cyclegan × .pth, arguments
    "import pth missing": ((*IMPORT, "{ws}/latest_net_G_B.pth", *OUT), nothing, 1),
    "import pth empty": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT), empty("latest_net_G_A.pth"), 1),
    "import pth truncated": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT), truncated("latest_net_G_A.pth"), 1),
    "import pth garbage": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT), garbage("latest_net_G_A.pth"), 1),
    "import pth carries code": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT), carrying_code("latest_net_G_A.pth"), 1),
    "import pth is a folder": ((*IMPORT, "{ws}/images", *OUT), nothing, 1),
    "import a gantool checkpoint": ((*IMPORT, "{ws}/" + A2B, *OUT), nothing, 1),
    "import --size 0": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT, "--size", "0"), nothing, 2),
    "import --blocks contradicts file": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT, "--blocks", "9"), nothing, 2),
    "import --domains junk": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT, "--domains", ",,,"), nothing, 2),
    "import --direction unknown": ((*IMPORT, "{ws}/latest_net_G_A.pth", *OUT, "--direction", "sideways"), nothing, 2),
    # bench × models, --compare JSON, arguments
    "bench ckpt garbage": ((*BENCH, "{ws}/" + A2B, *FAST_BENCH, "--backends", "torch"), garbage(A2B), 1),
    "bench onnx garbage": ((*BENCH, "{ws}/" + ONNX, *FAST_BENCH, "--backends", "onnxruntime"), garbage(ONNX), 1),
    "bench model missing": ((*BENCH, "{ws}/nothing", *FAST_BENCH), nothing, 1),
    "bench compare missing": ((*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/old.json"), nothing, 1),
    "bench compare empty": (
        (*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/report.json"),
        empty("report.json"),
        1,
    ),
    "bench compare truncated": (
        (*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/report.json"),
        truncated("report.json"),
        1,
    ),
    "bench compare garbage": (
        (*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/report.json"),
        garbage("report.json"),
        1,
    ),
    "bench compare another format": (
        (*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/report.json"),
        report_edit(lambda r: r | {"format": "x"}),
        1,
    ),
    "bench compare rows not a list": (
        (*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/report.json"),
        report_edit(lambda r: r | {"rows": 5}),
        1,
    ),
    "bench compare is a folder": ((*BENCH, "{ws}/gan", *FAST_BENCH, "--compare", "{ws}/images"), nothing, 1),
    "bench --batch-sizes 0": ((*BENCH, "{ws}/gan", "--batch-sizes", "0"), nothing, 2),
    "bench --batch-sizes junk": ((*BENCH, "{ws}/gan", "--batch-sizes", "1,many"), nothing, 2),
    "bench --backends unknown": ((*BENCH, "{ws}/gan", "--backends", "magic"), nothing, 2),
    "bench --warmup-s negative": ((*BENCH, "{ws}/gan", "--warmup-s", "-1"), nothing, 2),
    "bench --min-runs 0": ((*BENCH, "{ws}/gan", "--min-runs", "0"), nothing, 2),
    "bench --sizes 6": ((*BENCH, "{ws}/cyc", "--sizes", "6"), nothing, 2),
    "bench --json exists": ((*BENCH, "{ws}/gan", *FAST_BENCH, "--json", "{ws}/report.json"), nothing, 2),
    "bench --json under a file": ((*BENCH, "{ws}/gan", *FAST_BENCH, "--json", "{ws}/report.json/new.json"), nothing, 2),
    "bench --json same as --csv": (
        (*BENCH, "{ws}/gan", *FAST_BENCH, "--json", "{ws}/r.json", "--csv", "{ws}/r.json"),
        nothing,
        2,
    ),
    # doctor reads no file: only its arguments can be wrong
    "doctor unknown option": (("doctor", "--verbose"), nothing, 2),
    "doctor extra argument": (("doctor", "{ws}/gan"), nothing, 2),
}


@pytest.fixture
def workspace(genuine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the genuine artifacts, with TensorRT faked as installed for the engine rows."""
    ws = tmp_path / "ws"
    shutil.copytree(genuine, ws)
    pretend_tensorrt_is_installed(monkeypatch)
    return ws


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_in_one_line_and_touches_nothing(cli, workspace: Path, case: str) -> None:
    args, prepare, code = CASES[case]
    prepare(workspace)
    before = snapshot(workspace.parent)
    result = cli(*[arg.format(ws=workspace) for arg in args])
    assert result.exit_code == code, result.stderr
    assert_one_error_line(result.stderr)
    assert snapshot(workspace.parent) == before
    assert not (workspace.parent / "pwned").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
@pytest.mark.parametrize(
    "command", [(*GEN, "{ws}/gan"), (*EXPORT, "{ws}/gan"), TRAIN_GAN[:2], TRANSLATE + ("{ws}/cyc", "{ws}/images")]
)
def test_an_unwritable_output_folder_is_one_line(cli, workspace: Path, command: tuple[str, ...]) -> None:
    locked = workspace / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        before = snapshot(workspace.parent)
        result = cli(*[arg.format(ws=workspace) for arg in command], "--out", locked / "out")
        assert result.exit_code != 0
        assert_one_error_line(result.stderr)
        assert snapshot(workspace.parent) == before
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    "case", ["generate ckpt garbage", "train gan resume state carries code", "export --trt --max-batch 0"]
)
def test_a_real_process_fails_the_same_way(workspace: Path, case: str) -> None:
    args, prepare, code = CASES[case]
    prepare(workspace)
    before = snapshot(workspace.parent)
    env = {**os.environ, "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "gantool", *[arg.format(ws=workspace) for arg in args]],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == code, done.stderr
    assert_one_error_line(done.stderr)
    assert snapshot(workspace.parent) == before
    assert not (workspace.parent / "pwned").exists()
