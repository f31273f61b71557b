"""What a bench cell measures, piece by piece: FLOP counts, the memory sampler, parity, the compute-only contract.

Nothing here asserts a timing: the cell tests check which calls were made and in what order.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from conftest import make_checkpoint, make_translator_run, tiny_gan_spec, tiny_translator_spec
from gantool.benchmarks.flops import flops_per_image, forward_macs
from gantool.benchmarks.measure import INPUT_VARIANTS, Bench, Plan, measure_cell, parity
from gantool.benchmarks.memory import MIB, PeakMemory
from gantool.benchmarks.options import Target, artifact_stem, expand_models
from gantool.errors import ArtifactError
from gantool.runtime import gpu, registry
from gantool.runtime.backends.base import Backend
from gantool.spec import ModelSpec

FAST = Plan([1, 3], None, None, warmup_s=0.0, min_runs=8, max_s=0.0, device="cpu", precisions=None)


class RecordingBackend(Backend):
    """The tiny MLP GAN's interface, recording every batch it is handed; optionally a compute-only path."""

    name = "recording"
    calls: ClassVar[list[tuple[str, np.ndarray]]] = []
    with_compute: ClassVar[bool] = False

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        return model

    def _load(self, artifact: Path) -> ModelSpec:
        return tiny_gan_spec()

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(("run", batch.copy()))
        return np.zeros((len(batch), 1, 8, 8), np.float32)

    def compute_fn(self, batch: np.ndarray) -> Any:
        if not self.with_compute:
            return None
        staged = batch.copy()
        self.calls.append(("stage", staged))
        return lambda: self.calls.append(("compute", staged))


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RecordingBackend:
    monkeypatch.setattr(RecordingBackend, "calls", [])
    monkeypatch.setitem(registry.BACKENDS, "recording", "test_bench_measure:RecordingBackend")
    backend = RecordingBackend()
    backend.load(tmp_path)
    return backend


# --- FLOPs -------------------------------------------------------------------------------------------------------


def test_the_mlp_macs_are_the_weights_of_its_linear_layers() -> None:
    spec = tiny_gan_spec()  # latent 8 → 16 → 32 → 1×8×8
    assert forward_macs(spec, 8, 8) == 8 * 16 + 16 * 32 + 32 * 64
    assert flops_per_image(spec, 8, 8) == 2.0 * (8 * 16 + 16 * 32 + 32 * 64)


def test_a_tiny_translator_by_hand() -> None:
    """ngf 4, one block, 3×16×16: each conv's output elements × in-channels × kernel area, transposed ones alike."""
    spec = tiny_translator_spec()
    convs = [
        (4 * 16 * 16, 3, 49),  # c7s1-4
        (8 * 8 * 8, 4, 9),  # d8
        (16 * 4 * 4, 8, 9),  # d16
        (16 * 4 * 4, 16, 9),  # the block's two convs
        (16 * 4 * 4, 16, 9),
        (8 * 8 * 8, 16, 9),  # u8 (transposed)
        (4 * 16 * 16, 8, 9),  # u4 (transposed)
        (3 * 16 * 16, 4, 49),  # c7s1-3
    ]
    assert forward_macs(spec, 16, 16) == sum(out * cin * kernel for out, cin, kernel in convs)


def test_the_cyclegan_generator_matches_the_published_figure() -> None:
    """ResNet, 9 blocks, ngf 64, 256×256: 56.8 G MACs (GAN Compression's README, counted with torchprofile)."""
    spec = ModelSpec(kind="cyclegan", arch="resnet", arch_params={"ngf": 64, "blocks": 9}, channels=3, height=256,
                     width=256, direction="a2b", domains=("horse", "zebra"))  # fmt: skip
    assert forward_macs(spec, 256, 256) == pytest.approx(56.8e9, rel=0.01)
    assert flops_per_image(spec, 128, 128) == pytest.approx(2 * 56.8e9 / 4, rel=0.01)  # a ResNet scales with pixels


def test_flops_are_cached_per_architecture_and_size() -> None:
    spec = tiny_translator_spec()
    first = flops_per_image(spec, 16, 16)
    other_direction = tiny_translator_spec("b2a")  # same layers: same entry
    assert flops_per_image(other_direction, 16, 16) == first and flops_per_image(spec, 32, 32) == 4 * first


# --- memory ------------------------------------------------------------------------------------------------------


def test_the_sampler_sees_an_allocation_that_is_gone_by_the_end() -> None:
    import psutil

    with PeakMemory(interval_s=0.001) as peak:
        before = psutil.Process().memory_info().rss
        block = np.ones(64 * MIB // 8)  # 64 MiB of float64, every page written
        time.sleep(0.1)
        del block
    assert peak.rss_mb * MIB >= before + 0.95 * 64 * MIB
    assert peak.gpu_mb is None  # not asked for


@pytest.mark.skipif(gpu.scan().usable, reason="checks a machine without a usable GPU")
def test_gpu_memory_is_none_where_cuda_cannot_tell() -> None:
    with PeakMemory(gpu=True) as peak:
        pass
    assert peak.gpu_mb is None and peak.rss_mb > 0


# --- parity ------------------------------------------------------------------------------------------------------


def test_parity_is_max_abs_error_and_psnr_over_the_value_range() -> None:
    reference = np.zeros((2, 1, 4, 4), np.float32)
    assert parity(reference.copy(), reference, (-1.0, 1.0)) == (0.0, math.inf)
    error, psnr = parity(reference + 0.1, reference, (-1.0, 1.0))
    assert error == pytest.approx(0.1) and psnr == pytest.approx(10 * math.log10(2.0**2 / 0.01), rel=1e-5)
    assert parity(reference[:1], reference, (-1.0, 1.0)) is None  # another model's output: no figure


# --- the compute-only contract -----------------------------------------------------------------------------------


def test_cpu_backends_have_no_separate_compute_path(tmp_path: Path) -> None:
    from gantool.export.onnx_export import export_checkpoint

    run = tmp_path / "run"
    export_checkpoint(make_checkpoint(run), run)
    latents = np.zeros((2, 8), np.float32)
    for name in ("torch", "onnxruntime"):
        assert registry.create(name, run, "cpu").compute_fn(latents) is None


def test_onnxruntime_compute_binds_device_memory_and_copies_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The call sequence of onnxruntime's IO binding docs, on a recorded session (no GPU here)."""
    import onnxruntime as ort

    from gantool.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    calls: list[tuple[Any, ...]] = []

    class Binding:
        def bind_ortvalue_input(self, name: str, value: Any) -> None:
            calls.append(("input", name, value))

        def bind_output(self, name: str, device_type: str = "cpu") -> None:
            calls.append(("output", name, device_type))

        def synchronize_outputs(self) -> None:
            calls.append(("sync",))

    class Session:
        binding = Binding()

        def io_binding(self) -> Binding:
            return self.binding

        def run_with_iobinding(self, binding: Binding) -> None:
            calls.append(("run", binding is self.binding))

    def from_numpy(array: np.ndarray, device: str, index: int) -> tuple[Any, ...]:
        return ("ortvalue", device, index, array.shape, array.dtype)

    monkeypatch.setattr(ort.OrtValue, "ortvalue_from_numpy", staticmethod(from_numpy))
    backend = OnnxRuntimeBackend("cuda", "fp32")
    backend._session, backend._input, backend._output, backend._spec = Session(), "z", "images", tiny_gan_spec()
    compute = backend.compute_fn(np.zeros((3, 8), np.float64))
    assert compute is not None
    assert calls == [("input", "z", ("ortvalue", "cuda", 0, (3, 8), np.float32)), ("output", "images", "cuda")]
    compute()
    compute()
    assert calls[2:] == [("run", True), ("sync",)] * 2


def test_torch_compute_on_cuda_runs_on_device_tensors(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    backend = registry.create("torch", make_checkpoint(tmp_path / "run"), "cuda")
    compute = backend.compute_fn(np.zeros((4, 8), np.float32))
    assert compute is not None
    compute()


# --- a cell ------------------------------------------------------------------------------------------------------


def test_a_cell_times_cold_then_cycles_varied_inputs(recording: RecordingBackend) -> None:
    fields = measure_cell(recording, FAST, (8, 8), 3)
    batches = [batch for kind, batch in recording.calls if kind == "run"]
    inputs = [batch.tobytes() for batch in batches]
    assert len(set(inputs)) == INPUT_VARIANTS and all(batch.shape == (3, 8) for batch in batches)
    assert fields["runs"] >= FAST.min_runs and fields["cold_ms"] > 0
    assert fields["compute_is_end_to_end"] is True and fields["compute_p50_ms"] == fields["p50_ms"]
    assert fields["peak_rss_mb"] > 0 and fields["peak_gpu_mb"] is None


def test_a_compute_path_is_timed_on_its_own_staged_inputs(
    recording: RecordingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RecordingBackend, "with_compute", True)
    fields = measure_cell(recording, FAST, (8, 8), 2)
    kinds = [kind for kind, _ in recording.calls]
    first_stage = kinds.index("stage")
    assert set(kinds[:first_stage]) == {"run"} and set(kinds[first_stage:]) == {"stage", "compute"}  # after e2e
    assert kinds.count("stage") == INPUT_VARIANTS and kinds.count("compute") >= FAST.min_runs + 2  # cold, warm-up
    staged = {batch.tobytes() for kind, batch in recording.calls if kind == "compute"}
    assert len(staged) == INPUT_VARIANTS  # compute-only also cycles its inputs
    assert fields["compute_is_end_to_end"] is False and isinstance(fields["compute_p50_ms"], float)


def test_parity_runs_after_the_cells_so_every_cold_call_is_a_first_call(
    recording: RecordingBackend, tmp_path: Path
) -> None:
    run = Bench(["recording"], FAST, echo=lambda line: None)
    run.run(Target("generator", tmp_path, None))
    run.finish()
    batches = [batch for _, batch in recording.calls]
    first_of_3 = next(i for i, batch in enumerate(batches) if len(batch) == 3)
    assert all(len(batch) == 1 for batch in batches[:first_of_3])  # batch 1's cell, cold call first
    assert all(len(batch) == 3 for batch in batches[first_of_3:-1])  # batch 3's cell: its first call is its cold one
    assert len(batches[-1]) == 1 and np.array_equal(batches[-1], batches[0])  # parity: smallest batch, first input
    assert [row["status"] for row in run.rows] == ["ok", "ok"] and run.loaded == ["recording"]
    assert all(row["max_abs_err"] is None for row in run.rows)  # no checkpoint there to compare with
    assert all(row["flops_per_image"] == 2.0 * (8 * 16 + 16 * 32 + 32 * 64) for row in run.rows)


# --- MODEL arguments ---------------------------------------------------------------------------------------------


def test_models_expand_to_their_generators(tmp_path: Path) -> None:
    gan = make_checkpoint(tmp_path / "gan").parent
    cyclegan = make_translator_run(tmp_path / "cyclegan")
    onnx = cyclegan / "generator_b2a.fp16.onnx"
    onnx.write_bytes(b"")
    targets = expand_models([gan, cyclegan, onnx, gan], None)
    assert [(t.name, t.path, t.direction) for t in targets] == [
        ("generator", gan, None),
        ("generator_a2b", cyclegan, "a2b"),
        ("cyclegan/generator_b2a", cyclegan, "b2a"),  # two targets of one stem: told apart by folder and file
        ("cyclegan/generator_b2a.fp16.onnx", onnx, None),
    ]
    assert [t.name for t in expand_models([cyclegan], "b2a")] == ["generator_b2a"]
    with pytest.raises(ArtifactError, match="does not exist"):
        expand_models([tmp_path / "nowhere"], None)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("generator.safetensors", "generator"),
        ("generator_a2b.onnx", "generator_a2b"),
        ("generator.fp16.onnx", "generator"),
        ("generator_b2a.fp16.engine", "generator_b2a"),
        ("model.pt", "model"),
    ],
)
def test_artifact_stems(name: str, stem: str) -> None:
    assert artifact_stem(Path(name)) == stem
