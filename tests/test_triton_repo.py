"""gantool export --triton REPO: a Triton model repository whose every config matches the file it serves.

Every ``config.pbtxt`` is parsed the way Triton reads it, with protobuf's
text_format into tritonclient's ``ModelConfig``, and compared field by field
with the ONNX graph next to it (read back with ``onnx``). TensorRT plans are
covered with the fake TensorRT of tests/fake_tensorrt.py (its "engine" is the
ONNX it parsed) and with a hand-written engine sidecar.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest
from fake_tensorrt import OnnxRunner, fake_tensorrt
from google.protobuf import text_format

from conftest import make_checkpoint, make_translator_run, run_cli, tiny_translator_spec
from gantool import trt_engine
from gantool.engines import EngineInfo, MachineFacts, Profile, sidecar_path
from gantool.errors import GantoolError
from gantool.export.pbtxt import Enum, Map, to_pbtxt
from gantool.export.triton_config import TritonSettings
from gantool.export.triton_repo import plan_repository, write_repository
from gantool.spec import METADATA_KEY

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")  # the test extra installs it
KIND_AUTO, KIND_GPU = model_config_pb2.ModelInstanceGroup.KIND_AUTO, model_config_pb2.ModelInstanceGroup.KIND_GPU

TRITON_TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16"}
FACTS = MachineFacts("10.13.0.35", "NVIDIA Fake GPU", "9.0", "12.9", "12.9")


def parse_config(model_dir: Path):
    """``model_dir/config.pbtxt`` as Triton reads it: a ModelConfig message (text_format raises on any mistake)."""
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def assert_matches_onnx(config, onnx_file: Path) -> None:
    """Each input/output of the config is the ONNX graph's: name, element type, and dims without the batch."""
    model = onnx.load(str(onnx_file), load_external_data=False)
    for declared, actual in ((config.input, model.graph.input), (config.output, model.graph.output)):
        assert [t.name for t in declared] == [v.name for v in actual]
        for tensor, value in zip(declared, actual, strict=True):
            shape = value.type.tensor_type.shape.dim
            assert shape[0].dim_param == "batch"  # Triton adds the batch axis itself: max_batch_size > 0
            assert list(tensor.dims) == [d.dim_value if d.HasField("dim_value") else -1 for d in shape[1:]]
            data_type = model_config_pb2.DataType.Name(tensor.data_type)
            assert data_type == TRITON_TYPES[value.type.tensor_type.elem_type]
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert config.parameters["gantool_spec"].string_value == metadata[METADATA_KEY]
    assert config.parameters["gantool_precision"].string_value == metadata["gantool.precision"]


@pytest.fixture(scope="module")
def gan_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    """``gantool export RUN --triton REPO --triton-precision both --json`` on a tiny GAN run."""
    run = make_checkpoint(tmp_path_factory.mktemp("gan") / "run").parent
    repo = run.parent / "repo"
    result = run_cli("export", run, "--triton", repo, "--triton-precision", "both", "--json")
    assert result.exit_code == 0, result.stderr
    return run, repo, json.loads(result.stdout)


@pytest.fixture(scope="module")
def cyclegan_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``gantool export RUN --triton REPO`` on a tiny CycleGAN run: both directions, FP32 (the default)."""
    run = make_translator_run(tmp_path_factory.mktemp("cyclegan") / "run")
    repo = run.parent / "repo"
    result = run_cli("export", run, "--triton", repo)
    assert result.exit_code == 0, result.stderr
    return run, repo


def test_a_gan_run_gives_one_model_per_onnx_file(gan_export: tuple[Path, Path, list[dict]]) -> None:
    run, repo, rows = gan_export
    assert tree(repo) == [
        "generator", "generator/1", "generator/1/model.onnx", "generator/config.pbtxt",
        "generator_fp16", "generator_fp16/1", "generator_fp16/1/model.onnx", "generator_fp16/config.pbtxt",
    ]  # fmt: skip
    assert (repo / "generator/1/model.onnx").read_bytes() == (run / "generator.onnx").read_bytes()
    assert (repo / "generator_fp16/1/model.onnx").read_bytes() == (run / "generator.fp16.onnx").read_bytes()
    assert [(Path(r["path"]).name, r["precision"], r["ok"]) for r in rows] == [
        ("generator.onnx", "fp32", True), ("generator.fp16.onnx", "fp16", True),
        ("generator", "fp32", True), ("generator_fp16", "fp16", True),
    ]  # fmt: skip
    assert [(r["platform"], r["max_batch_size"], Path(r["source"]).name) for r in rows[2:]] == [
        ("onnxruntime_onnx", 64, "generator.onnx"), ("onnxruntime_onnx", 64, "generator.fp16.onnx"),
    ]  # fmt: skip
    assert not [p for p in repo.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_gan_configs_match_their_onnx_files(gan_export: tuple[Path, Path, list[dict]]) -> None:
    _, repo, _ = gan_export
    for name in ("generator", "generator_fp16"):
        config = parse_config(repo / name)
        assert (config.name, config.platform, config.max_batch_size) == (name, "onnxruntime_onnx", 64)
        assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
        assert config.dynamic_batching.max_queue_delay_microseconds == 500
        assert [(g.count, g.kind) for g in config.instance_group] == [(1, KIND_AUTO)]
        assert not config.HasField("optimization")
        assert_matches_onnx(config, repo / name / "1" / "model.onnx")
    assert list(parse_config(repo / "generator").input[0].dims) == [8]  # z: the latent size
    assert list(parse_config(repo / "generator").output[0].dims) == [1, 8, 8]  # C, H, W


def test_translators_declare_their_dynamic_sides(cyclegan_export: tuple[Path, Path]) -> None:
    run, repo = cyclegan_export
    assert sorted(p.name for p in repo.iterdir()) == ["generator_a2b", "generator_b2a"]
    for name in ("generator_a2b", "generator_b2a"):
        config = parse_config(repo / name)
        assert config.name == name and config.max_batch_size == 64
        assert [(t.name, list(t.dims)) for t in [*config.input, *config.output]] == [
            ("images", [3, -1, -1]), ("translated", [3, -1, -1]),
        ]  # fmt: skip
        assert_matches_onnx(config, repo / name / "1" / "model.onnx")
        assert json.loads(config.parameters["gantool_spec"].string_value)["direction"] == name[-3:]
        assert (repo / name / "1" / "model.onnx").read_bytes() == (run / f"{name}.onnx").read_bytes()


def test_options_shape_batching_instances_and_the_ort_tensorrt_accelerator(
    gan_export: tuple[Path, Path, list[dict]], tmp_path: Path
) -> None:
    run, _, _ = gan_export
    repo = tmp_path / "repo"
    result = run_cli(
        "export", run / "generator.onnx", "--triton", repo,  # an exported file: nothing is exported again
        "--triton-max-batch", "16", "--triton-preferred-batch", "16,4", "--triton-queue-delay-us", "100",
        "--triton-instances", "2", "--triton-device", "gpu", "--triton-ort-trt", "--triton-prefix", "digits_",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [Path(line.split()[0]).name for line in result.stdout.splitlines()[1:]] == ["digits_generator"]
    config = parse_config(repo / "digits_generator")
    assert (config.name, config.max_batch_size) == ("digits_generator", 16)
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 16]
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, KIND_GPU)]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert int(accelerator.parameters["max_workspace_size_bytes"]) > 0
    assert_matches_onnx(config, run / "generator.onnx")


def test_an_existing_model_needs_force(gan_export: tuple[Path, Path, list[dict]], tmp_path: Path) -> None:
    run, _, _ = gan_export
    repo = tmp_path / "repo"
    assert run_cli("export", run / "generator.onnx", "--triton", repo).exit_code == 0
    before = (repo / "generator/config.pbtxt").read_text()
    refused = run_cli("export", run / "generator.onnx", "--triton", repo, "--triton-max-batch", "8")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "Triton model" in refused.stderr and "--force" in refused.stderr
    assert (repo / "generator/config.pbtxt").read_text() == before
    forced = run_cli("export", run / "generator.onnx", "--triton", repo, "--triton-max-batch", "8", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert parse_config(repo / "generator").max_batch_size == 8
    assert list(parse_config(repo / "generator").dynamic_batching.preferred_batch_size) == [8]  # 32 > max batch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # staging and replaced folders are gone


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--triton-max-batch", "8"], ["--triton-max-batch", "only applies with --triton"]),
        (["--triton", "R", "--triton-preferred-batch", "128"], ["--triton-preferred-batch", "[1, 64]"]),
        (["--triton", "R", "--triton-preferred-batch", "8,x"], ["comma-separated"]),
        (["--triton", "R", "--triton-prefix", "a/b"], ["--triton-prefix"]),
        (["--triton", "R", "--triton-ort-trt", "--triton-device", "cpu"], ["GPUs"]),
        (["--triton", "R", "--trt", "--max-batch", "16", "--triton-max-batch", "32"], ["engine's --max-batch 16"]),
    ],
)
def test_bad_triton_flags_are_one_line_before_any_work(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str], words: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # "R" is relative: it must never be created
    result = run_cli("export", tiny_checkpoint, *flags)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    assert not (tmp_path / "R").exists() and sorted(p.name for p in tiny_checkpoint.parent.iterdir()) == [
        "generator.safetensors"
    ]


def test_an_onnx_file_that_contradicts_its_spec_is_refused(
    gan_export: tuple[Path, Path, list[dict]], tmp_path: Path
) -> None:
    run, _, _ = gan_export
    model = onnx.load(str(run / "generator.onnx"))
    spec = json.loads({p.key: p.value for p in model.metadata_props}[METADATA_KEY])
    spec["latent_dim"] = 9  # the graph still takes z of 8
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(spec), "gantool.precision": "fp32"})
    onnx.save(model, str(tmp_path / "liar.onnx"))
    result = run_cli("export", tmp_path / "liar.onnx", "--triton", tmp_path / "repo")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "liar.onnx" in result.stderr and "shape" in result.stderr
    assert not (tmp_path / "repo").exists() or not list((tmp_path / "repo").iterdir())


def test_a_failure_writes_no_model_at_all(gan_export: tuple[Path, Path, list[dict]], tmp_path: Path) -> None:
    run, _, _ = gan_export
    repo = tmp_path / "repo"
    settings = TritonSettings(repo=repo, max_batch=64)
    entries = plan_repository(repo, [run / "generator.onnx", tmp_path / "missing.onnx"], [], "", force=False)
    with pytest.raises(GantoolError, match="missing.onnx does not exist"):
        write_repository(repo, entries, settings, force=False)
    assert not repo.exists() or not list(repo.iterdir())  # not even the first, good model


# --- TensorRT plans ----------------------------------------------------------------------------------------------


def test_trt_adds_a_plan_model_sized_by_its_engine_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.13.0.35"))  # its engine: the ONNX it parsed
    monkeypatch.setattr(trt_engine, "machine_facts", lambda module, device=0: FACTS)
    monkeypatch.setattr(trt_engine, "EngineRunner", OnnxRunner)
    run = make_checkpoint(tmp_path / "run").parent
    result = run_cli("export", run, "--trt", "--max-batch", "16", "--triton", tmp_path / "repo", "--json")
    assert result.exit_code == 0, result.stderr
    repo = tmp_path / "repo"
    assert sorted(p.name for p in repo.iterdir()) == ["generator", "generator_fp16_trt"]
    assert (repo / "generator_fp16_trt/1/model.plan").read_bytes() == (run / "generator.fp16.engine").read_bytes()
    plan = parse_config(repo / "generator_fp16_trt")
    assert (plan.platform, plan.max_batch_size) == ("tensorrt_plan", 16)  # the sidecar's profile max
    assert [(t.name, t.data_type, list(t.dims)) for t in [*plan.input, *plan.output]] == [
        ("z", model_config_pb2.TYPE_FP32, [8]), ("images", model_config_pb2.TYPE_FP32, [1, 8, 8]),
    ]  # fmt: skip
    assert [(g.count, g.kind) for g in plan.instance_group] == [(1, KIND_GPU)]
    info = EngineInfo.from_json(sidecar_path(run / "generator.fp16.engine").read_text())
    assert plan.parameters["gantool_spec"].string_value == info.spec.to_json()
    assert plan.parameters["gantool_precision"].string_value == "fp16"
    onnx_model = parse_config(repo / "generator")
    assert onnx_model.max_batch_size == 16  # follows --max-batch, so both models take the same batches
    assert_matches_onnx(onnx_model, run / "generator.onnx")
    rows = json.loads(result.stdout)
    assert [(Path(r["path"]).name, r.get("platform")) for r in rows[-2:]] == [
        ("generator", "onnxruntime_onnx"), ("generator_fp16_trt", "tensorrt_plan"),
    ]  # fmt: skip


def test_a_translator_plan_says_minus_one_where_its_profile_varies(tmp_path: Path) -> None:
    spec = tiny_translator_spec("b2a")
    engine = tmp_path / "generator_b2a.fp16.engine"
    engine.write_bytes(b"not really a plan")  # only its sidecar is read
    profile = Profile("images", "translated", (1, 3, 16, 16), (4, 3, 16, 32), (8, 3, 16, 64))
    info = EngineInfo(spec, "fp16", profile, FACTS, "generator_b2a.fp16.onnx", "0" * 64, "1" * 64, 1e-3)
    sidecar_path(engine).write_text(info.to_json())
    repo = tmp_path / "repo"
    settings = TritonSettings(repo=repo, max_batch=64, preferred=(4,))
    (model,) = write_repository(repo, plan_repository(repo, [], [engine], "", False), settings, False)
    assert (model.path.name, model.platform, model.max_batch_size) == ("generator_b2a_fp16_trt", "tensorrt_plan", 8)
    config = parse_config(model.path)
    assert config.max_batch_size == 8 and list(config.dynamic_batching.preferred_batch_size) == [4]
    assert [list(t.dims) for t in [*config.input, *config.output]] == [[3, 16, -1], [3, 16, -1]]


def test_the_text_format_writer_escapes_what_protobuf_reads_back() -> None:
    tricky = 'quote " backslash \\ newline \n tab \t café ✓'
    text = to_pbtxt({
        "name": tricky,
        "input": [{"name": "x", "data_type": Enum("TYPE_FP32"), "dims": [1, -1]}],
        "parameters": Map(k={"string_value": tricky}),
    })  # fmt: skip
    assert text.isascii()  # non-ASCII as octal UTF-8 bytes, as protobuf's C++ parser in tritonserver reads them
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.name == tricky and config.parameters["k"].string_value == tricky
    assert list(config.input[0].dims) == [1, -1] and config.input[0].data_type == model_config_pb2.TYPE_FP32
