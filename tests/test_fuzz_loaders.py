"""Every loader, fed mutated bytes: it returns a valid object or raises a GantoolError, nothing else.

Each property starts from a genuine artifact (a checkpoint, its ONNX export, a
training state, an engine sidecar, an IDX file, a PNG, a bench report) and
mutates it the way files get damaged or tampered with: bytes flipped (mostly
in the header, where the structure lives), truncated, spliced, or, for JSON, one
value anywhere replaced by another. A loader that lets any other exception
escape would reach the user as a traceback. Examples are derandomized so CI
sees the same ones every run; no deadline, a few dozen examples per loader.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import make_checkpoint, tiny_gan_spec
from gantool.benchmarks.report import FORMAT, ROW_KEYS, VERSION, load_report
from gantool.checkpoint import load_generator, read_spec
from gantool.data import load_image_folder, read_idx_images
from gantool.engines import EngineInfo, MachineFacts, profile_for
from gantool.errors import ArtifactError, GantoolError
from gantool.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from gantool.runtime.image_io import Decoding, read_image
from gantool.runtime.onnx_file import has_external_data, read_metadata
from gantool.spec import ModelSpec
from gantool.training.state import load_train_state, save_train_state

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with bytes flipped (biased to the first 512), truncated, or a random run spliced in."""
    data = bytearray(original)
    how = draw(st.sampled_from(["flip", "truncate", "splice"]))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    position = st.one_of(st.integers(0, min(len(data), 512) - 1), st.integers(0, len(data) - 1))
    if how == "flip":
        for index in draw(st.lists(position, min_size=1, max_size=8)):
            data[index] ^= draw(st.integers(1, 255))
        return bytes(data)
    start = draw(position)
    return (
        bytes(data[:start]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[start + draw(st.integers(0, 64)) :])
    )


@st.composite
def edited_json(draw: st.DrawFn, original: Any) -> Any:
    """A deep copy of ``original`` with one value (at any depth) replaced, or one key added or removed."""
    document = json.loads(json.dumps(original))
    parent, key = None, None
    node = document
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        parent, key = node, draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        node = node[key]
    target = node if isinstance(node, dict) else parent
    how = draw(st.sampled_from(["replace", "add", "remove"]))
    if how == "add" and isinstance(target, dict):
        target[draw(st.text(min_size=1, max_size=8))] = draw(JSON_VALUES)
    elif how == "remove" and isinstance(target, dict) and target:
        del target[draw(st.sampled_from(sorted(target)))]
    elif parent is not None:
        parent[key] = draw(JSON_VALUES)
    else:
        document = draw(JSON_VALUES)
    return document


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One valid artifact of every kind gantool reads, as bytes (or a JSON document)."""
    from gantool.export.onnx_export import export_checkpoint

    folder = tmp_path_factory.mktemp("genuine")
    checkpoint = make_checkpoint(folder / "run")
    export_checkpoint(checkpoint, checkpoint.parent)
    save_train_state(folder / "state.pt", {"kind": "gan", "config": {"epochs": 2}, "epoch": 1, "steps": 3})
    spec = tiny_gan_spec()
    sidecar = EngineInfo(
        spec=spec, precision="fp16", profile=profile_for(spec, "z", "images"),
        built_on=MachineFacts("10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0", "12.9", "12.9"),
        source_onnx="generator.onnx", source_sha256="0" * 64, engine_sha256="1" * 64, max_abs_diff=0.003,
    )  # fmt: skip
    png = io.BytesIO()
    Image.fromarray(np.arange(192, dtype=np.uint8).reshape(8, 8, 3)).save(png, "PNG")
    row = dict.fromkeys(ROW_KEYS) | {"model": "generator", "backend": "torch", "device": "cpu", "status": "ok"}
    return {
        "checkpoint": checkpoint.read_bytes(),
        "onnx": (checkpoint.parent / "generator.onnx").read_bytes(),
        "state": (folder / "state.pt").read_bytes(),
        "spec": spec.to_dict(),
        "sidecar": json.loads(sidecar.to_json()),
        "idx": struct.pack(">IIII", 0x803, 2, 4, 4) + bytes(range(32)),
        "png": png.getvalue(),
        "report": {
            "format": FORMAT, "version": VERSION, "created": "", "command": "", "models": [], "settings": {},
            "environment": {}, "rows": [row],
        },
    }  # fmt: skip


def returns_or_refuses(load: Any, *args: Any, error: type[Exception] = GantoolError) -> Any:
    """Call a loader; a GantoolError (``error``) is a refusal, anything else escaping fails the property."""
    try:
        return load(*args)
    except error:
        return None


@FUZZ
@given(data=st.data())
def test_spec_json_loader_returns_a_spec_or_refuses(genuine: dict[str, Any], data: st.DataObject) -> None:
    text = json.dumps(data.draw(edited_json(genuine["spec"])))
    spec = returns_or_refuses(
        ModelSpec.from_json, data.draw(st.sampled_from([text.encode(), text])), error=ArtifactError
    )
    assert spec is None or ModelSpec.from_json(spec.to_json()) == spec
    assert returns_or_refuses(ModelSpec.from_json, data.draw(damaged(text.encode())), error=ArtifactError) is not False


@FUZZ
@given(data=st.data())
def test_checkpoint_loaders_return_a_model_or_refuse(
    genuine: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    original = genuine["checkpoint"]
    if data.draw(st.booleans()):  # the safetensors header (JSON), edited as a document
        size = struct.unpack("<Q", original[:8])[0]
        header = json.dumps(data.draw(edited_json(json.loads(original[8 : 8 + size])))).encode()
        mutated = struct.pack("<Q", len(header)) + header + original[8 + size :]
    else:
        mutated = data.draw(damaged(original))
    path = write(tmp_path, "generator.safetensors", mutated)
    spec = returns_or_refuses(read_spec, path, error=ArtifactError)
    loaded = returns_or_refuses(load_generator, path, error=ArtifactError)
    if loaded is not None:
        assert loaded[1] == spec


@FUZZ
@given(data=st.data())
def test_engine_sidecar_loader_returns_info_or_refuses(genuine: dict[str, Any], data: st.DataObject) -> None:
    text = json.dumps(data.draw(edited_json(genuine["sidecar"])))
    info = returns_or_refuses(EngineInfo.from_json, text, error=ArtifactError)
    assert info is None or EngineInfo.from_json(info.to_json()) == info
    returns_or_refuses(EngineInfo.from_json, data.draw(damaged(text.encode())), error=ArtifactError)


@FUZZ
@given(data=st.data())
def test_training_state_loader_returns_a_state_or_refuses(
    genuine: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    path = write(tmp_path, "train_state.pt", data.draw(damaged(genuine["state"])))
    state = returns_or_refuses(load_train_state, path, error=ArtifactError)
    assert state is None or isinstance(state, dict)


@FUZZ
@given(data=st.data())
def test_onnx_readers_and_backend_return_or_refuse(
    genuine: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    mutated = data.draw(damaged(genuine["onnx"]))
    path = write(tmp_path, "generator.onnx", mutated)
    returns_or_refuses(read_metadata, mutated, path, error=ArtifactError)
    returns_or_refuses(has_external_data, mutated, path, error=ArtifactError)
    spec = OnnxRuntimeBackend.peek_spec(path)
    assert spec is None or isinstance(spec, ModelSpec)
    backend = OnnxRuntimeBackend()
    if returns_or_refuses(backend.load, path) is not None or backend._spec is not None:
        assert backend.run(np.zeros((2, backend.spec.latent_dim or 1), np.float32)).shape[0] == 2


@FUZZ
@given(data=st.data())
def test_idx_reader_returns_images_or_refuses(genuine: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    mutated = data.draw(damaged(genuine["idx"]))
    gz = data.draw(st.booleans())
    path = write(tmp_path, "train-images-idx3-ubyte" + (".gz" if gz else ""), gzip.compress(mutated) if gz else mutated)
    images = returns_or_refuses(read_idx_images, path)
    assert images is None or (images.dtype == np.uint8 and images.ndim == 4)


@FUZZ
@given(data=st.data())
def test_image_loaders_return_pixels_or_refuse(genuine: dict[str, Any], tmp_path: Path, data: st.DataObject) -> None:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    path = write(folder, data.draw(st.sampled_from(["x.png", "x.jpg", "x.gif", "x.bmp", "x.tiff"])), b"")
    for stale in folder.iterdir():
        stale.unlink()
    path.write_bytes(data.draw(damaged(genuine["png"])))
    loaded = returns_or_refuses(load_image_folder, folder, 8, None)
    assert loaded is None or loaded[0].shape[1:3] == (8, 8)
    try:  # translate reports every Exception from read_image as a skipped file, by name
        pixels = read_image(path, 3, Decoding((8, 8)))
    except Exception:  # noqa: BLE001 -- what matters: an Exception (not a hang, not a BaseException)
        return
    assert pixels.shape == (8, 8, 3)


@FUZZ
@given(data=st.data())
def test_bench_report_loader_returns_a_report_or_refuses(
    genuine: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    text = json.dumps(data.draw(edited_json(genuine["report"]))).encode()
    if data.draw(st.booleans()):
        text = data.draw(damaged(text))
    report = returns_or_refuses(load_report, write(tmp_path, "report.json", text), error=ArtifactError)
    assert report is None or isinstance(report["rows"], list)


# --- safe loading: each guarantee, by name ----------------------------------------------------------------------


def _checkpoint_with_spec(folder: Path, **changes: Any) -> Path:
    """A genuine tiny checkpoint whose header spec says something else (its weights unchanged)."""
    path = make_checkpoint(folder)
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    header["__metadata__"]["gantool.spec"] = json.dumps(json.loads(header["__metadata__"]["gantool.spec"]) | changes)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + raw[8 + size :])
    return path


def test_checkpoint_weights_load_from_safetensors_without_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    import torch

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    module, spec = load_generator(make_checkpoint(tmp_path / "run"))
    assert spec == tiny_gan_spec() and module(torch.zeros(2, 8)).shape == (2, 1, 8, 8)


def test_an_absurd_checkpoint_spec_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    """Under an address-space limit of 1 GiB more than the process needs: the refusal must come before allocation."""
    import subprocess
    import sys

    big = _checkpoint_with_spec(tmp_path / "big", arch_params={"hidden": [16384] * 8}, height=64, width=64)  # 2.1e9
    huge = _checkpoint_with_spec(tmp_path / "huge", arch_params={"hidden": [16384] * 8}, channels=3, height=4096,
                                 width=4096)  # fmt: skip
    script = f"""
import resource
from pathlib import Path
from gantool.checkpoint import load_generator
from gantool.errors import ArtifactError
import gantool.models, torch
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.RLIM_INFINITY))
for path in ({str(big)!r}, {str(huge)!r}):
    try:
        load_generator(Path(path))
    except ArtifactError as exc:
        print("refused:", exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("more than gantool loads") == 2, done.stdout + done.stderr


def test_training_state_is_read_with_weights_only_so_code_never_runs(tmp_path: Path) -> None:
    import torch

    class RunsCode:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (tmp_path / "pwned",))

    torch.save({"format": "gantool.train_state", "version": 2, "payload": RunsCode()}, tmp_path / "train_state.pt")
    with pytest.raises(ArtifactError, match="not a readable gantool training state"):
        load_train_state(tmp_path / "train_state.pt")
    assert not (tmp_path / "pwned").exists()


def test_an_onnx_spec_is_checked_before_onnxruntime_sees_the_file(
    genuine: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx
    import onnxruntime

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("onnxruntime was handed a file with an invalid spec")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    for changes in ({"latent_dim": 10**9}, {"height": 10**6}, {"channels": 4}, {"evil": 1}):
        model = onnx.load_from_string(genuine["onnx"])
        for prop in model.metadata_props:
            if prop.key == "gantool.spec":
                prop.value = json.dumps(json.loads(prop.value) | changes)
        path = write(tmp_path, "generator.onnx", model.SerializeToString())
        with pytest.raises(ArtifactError, match="model spec"):
            OnnxRuntimeBackend().load(path)


def test_an_onnx_whose_graph_contradicts_its_spec_is_refused_at_load(genuine: dict[str, Any], tmp_path: Path) -> None:
    import onnx

    for changes in ({"latent_dim": 9}, {"height": 32, "width": 32}, {"channels": 3}):
        model = onnx.load_from_string(genuine["onnx"])
        for prop in model.metadata_props:
            if prop.key == "gantool.spec":
                prop.value = json.dumps(json.loads(prop.value) | changes)
        path = write(tmp_path, "generator.onnx", model.SerializeToString())
        with pytest.raises(ArtifactError, match="graph interface"):
            OnnxRuntimeBackend().load(path)


@pytest.mark.parametrize("side", [4, 6, 30, 36])
def test_spec_refuses_a_geometry_its_architecture_cannot_build(side: int) -> None:
    with pytest.raises(ArtifactError, match="cannot be a dcgan"):
        ModelSpec(kind="gan", arch="dcgan", arch_params={"ngf": 4}, channels=1, height=side, width=side, latent_dim=8)


@pytest.mark.parametrize("loader", [ModelSpec.from_json, EngineInfo.from_json])
def test_json_nested_too_deeply_is_refused_in_one_line(loader: Any) -> None:
    with pytest.raises(ArtifactError, match="not valid JSON"):
        loader("[" * 50_000)


def test_an_idx_header_promising_more_than_gantool_reads_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "train-images-idx3-ubyte.gz", gzip.compress(struct.pack(">IIII", 0x803, 2**31, 28, 28)))
    with pytest.raises(GantoolError, match="more than gantool reads"):
        read_idx_images(path)


def test_no_code_evaluates_or_blanket_setattrs_what_it_reads() -> None:
    """No eval/exec/compile/__import__/setattr calls anywhere in the package: metadata is parsed, never run."""
    import ast

    import gantool

    root = Path(gantool.__file__).parent.parent
    found = []
    for source in root.glob("*/**/*.py"):
        if source.parts[len(root.parts)] not in ("gantool", "training", "runtime", "export", "benchmarks"):
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            called = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
            if called in ("eval", "exec", "compile", "__import__", "setattr"):
                found.append(f"{source.relative_to(root)}:{node.lineno} {called}")
    assert found == []


def test_no_path_read_from_an_artifact_is_ever_opened(genuine: dict[str, Any], tmp_path: Path) -> None:
    """An engine sidecar's source_onnx and an ONNX file's external-data location name files that are never opened."""
    import sys

    from gantool.runtime.backends.tensorrt_backend import read_sidecar

    bait = write(tmp_path, "secret.onnx", b"do not open")
    opened: list[str] = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and opened_on else None)
    sidecar = genuine["sidecar"] | {"source_onnx": str(bait)}
    engine = write(tmp_path, "generator.fp16.engine", b"plan")
    write(tmp_path, "generator.fp16.engine.json", json.dumps(sidecar).encode())
    import onnx

    model = onnx.load_from_string(genuine["onnx"])
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", str(bait)
    external = write(tmp_path, "external.onnx", model.SerializeToString())
    opened_on.append(True)
    try:
        assert read_sidecar(engine).source_onnx == str(bait)
        with pytest.raises(ArtifactError, match="external files"):
            OnnxRuntimeBackend().load(external)
    finally:
        opened_on.clear()
    assert str(bait) not in opened and str(engine.with_name("generator.fp16.engine.json")) in opened


opened_on: list[bool] = []  # the audit hook records opens only while a test sets this (hooks cannot be removed)
