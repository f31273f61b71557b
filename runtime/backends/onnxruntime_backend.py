"""ONNX Runtime backend: the lean path — numpy and onnxruntime only, never torch — on CPU or CUDA.

The model comes from a file a user may have been handed, so before
onnxruntime sees it we check that it is self-contained (gantool.runtime.onnx_file:
no external data), and the bytes that were checked are the bytes handed to
onnxruntime, so the file cannot change in between. Loading from bytes also
means onnxruntime knows no model folder to resolve external paths against.

The spec is read from the model's metadata (``gantool.spec``), so an ONNX file
is enough to sample from; a file without it is refused as "not a gantool model".

On ``cuda`` the session runs on the CUDA execution provider (from the
``onnxruntime-gpu`` package, which replaces the CPU ``onnxruntime``), with IO
binding: the input is bound from numpy and the output is bound on the device,
then copied out once, so onnxruntime does not stage either through its own CPU
copies. ``--precision fp16`` loads the ``.fp16.onnx`` (FP16 compute, FP32 I/O).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from gantool.artifacts import resolve_onnx
from gantool.errors import ArtifactError, BackendUnavailable, GantoolError
from gantool.runtime import gpu
from gantool.runtime.backends.base import Backend, Probe
from gantool.runtime.onnx_file import has_external_data, read_metadata
from gantool.spec import METADATA_KEY, PRECISION_KEY, ModelSpec

CUDA_PROVIDER = "CUDAExecutionProvider"
GPU_HINT = 'onnxruntime-gpu is not installed (pip install "gantool[gpu]"; README says how to swap it for onnxruntime)'
CONFLICT = (
    "both onnxruntime and onnxruntime-gpu are installed: they overwrite each other; "
    "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
)
OUT_OF_MEMORY = ("out of memory", "Failed to allocate")  # how onnxruntime's CUDA errors say it


class OnnxRuntimeBackend(Backend):
    """An exported ``.onnx`` (FP32 or FP16 inside, FP32 in and out) on onnxruntime's CPU or CUDA provider."""

    name: ClassVar[str] = "onnxruntime"
    requires: ClassVar[tuple[str, ...]] = ("onnxruntime",)
    install_hint: ClassVar[str] = "pip install onnxruntime"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")  # which exported file a run dir gives
    precision_from_file: ClassVar[bool] = True  # the file's precision is what runs (not so on the TensorRT provider)

    def __init__(self, device: str | None = None, precision: str | None = None) -> None:
        super().__init__(device, precision)
        self._session: Any = None
        self._input = self._output = ""
        self._fixed_size: tuple[int, int] | None = None  # a translator exported for one H×W only

    @classmethod
    def resolve(cls, model: Path, direction: str | None = None, precision: str = "fp32") -> Path:
        return resolve_onnx(model, precision, direction=direction)

    @classmethod
    def peek_spec(cls, artifact: Path) -> ModelSpec | None:
        """The spec from the file's metadata, read from the protobuf directly: no session, no onnxruntime import."""
        try:
            text = read_metadata(artifact.read_bytes(), artifact).get(METADATA_KEY)
            return None if text is None else ModelSpec.from_json(text)
        except (OSError, ArtifactError):
            return None  # load() reports a missing, corrupt or foreign file in its own words

    @classmethod
    def probe(cls) -> Probe:
        """onnxruntime's version, the CPU, and the GPUs when its CUDA provider is there; or why it cannot use them."""
        available = cls.availability()
        if not available.ok:
            return Probe(installed=False, note=available.reason)
        import onnxruntime as ort

        notes = [CONFLICT] if installed_distributions() >= {"onnxruntime", "onnxruntime-gpu"} else []
        devices = ["cpu"]
        if CUDA_PROVIDER in ort.get_available_providers():
            scan = gpu.scan()
            devices += [found.describe() for found in scan.gpus]
            notes += [] if scan.usable else [scan.why_not]
        else:
            notes.append(
                'onnxruntime is the CPU build: for CUDA, pip install "gantool[gpu]" (README: GPUs and TensorRT)'
            )
        return Probe(installed=True, version=ort.__version__, devices=tuple(devices), note="; ".join(notes))

    def providers(self, ort: Any, model: bytes) -> list[Any]:
        """Execution providers in priority order, for onnxruntime.InferenceSession; the first is the one wanted."""
        if self.device == "cpu":
            return ["CPUExecutionProvider"]
        require_provider(ort, CUDA_PROVIDER, GPU_HINT)
        return [(CUDA_PROVIDER, {"device_id": 0}), "CPUExecutionProvider"]

    def _load(self, artifact: Path) -> ModelSpec:
        """Check the file's bytes (self-contained, a valid gantool spec) before onnxruntime allocates anything."""
        data = artifact.read_bytes()
        if has_external_data(data, artifact):
            raise ArtifactError(
                f"{artifact} stores weights in external files, which gantool does not load; re-export it as one file"
            )
        spec = read_spec_from_bytes(data, artifact)
        recorded = read_metadata(data, artifact).get(PRECISION_KEY)
        if self.precision_from_file and recorded in self.precisions:
            self.precision = recorded  # an .onnx given by path runs at the precision it was exported at
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: no optimiser chatter on stderr
        # Idle intra-op threads sleep instead of spinning: generate encodes PNGs on other threads while the
        # next batch runs, and spinning threads steal those cores (1000 PNGs on 2 cores: 0.25 s → 0.14 s).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = self.providers(ort, data)
        try:
            session = ort.InferenceSession(data, options, providers=providers)
        except Exception as exc:  # noqa: BLE001 -- onnxruntime's error classes (InvalidProtobuf, Fail, ...) derive from Exception only
            where = "" if self.device == "cpu" else f" on {self.device}"
            raise ArtifactError(f"{artifact} is not a loadable ONNX model{where} ({_first_line(exc)})") from None
        # onnxruntime falls back to the next provider, with a warning only, when one cannot start (CUDA or
        # cuDNN libraries missing, no driver): running on the CPU while the user asked for the GPU is refused.
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in session.get_providers():
            raise BackendUnavailable(
                f"onnxruntime could not start its {wanted} here ({self.start_hint()}); see gantool doctor"
            )
        inputs, outputs = session.get_inputs(), session.get_outputs()
        check_interface(artifact, spec, inputs, outputs)
        self._session, self._input, self._output = session, inputs[0].name, outputs[0].name
        height, width = inputs[0].shape[2:] if spec.latent_dim is None else (None, None)
        if isinstance(height, int) and isinstance(width, int):
            self._fixed_size = (height, width)
        return spec

    def start_hint(self) -> str:
        """What to check when the wanted provider is listed but did not start."""
        return "are CUDA 12/13 and cuDNN 9 installed for this onnxruntime-gpu, and the NVIDIA driver working?"

    def check_input(self, batch: np.ndarray) -> None:
        """Backend.check_input, and the size of a translator exported for one H×W only."""
        super().check_input(batch)
        if self._fixed_size is not None and tuple(batch.shape[2:]) != self._fixed_size:
            height, width = self._fixed_size
            raise ArtifactError(
                f"{self.artifact} was exported for {height}×{width} images only, got {batch.shape[2]}×{batch.shape[3]}: "
                "translate at that size, or re-export with gantool export"
            )

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert self._session is not None, "load() first"
        self.check_input(batch)
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.device == "cpu":
            return self._session.run([self._output], {self._input: batch})[0].astype(np.float32, copy=False)
        try:
            return run_bound(self._session, self._input, self._output, batch, self.device)
        except Exception as exc:  # onnxruntime raises its own RuntimeException classes: re-raised unless OOM
            if any(words in str(exc) for words in OUT_OF_MEMORY):
                raise GantoolError(
                    f"out of GPU memory at a batch of {len(batch)}: try a smaller --batch-size"
                ) from None
            raise

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None] | None:
        """On CUDA: the batch as an OrtValue on the GPU, bound with the output on the GPU; each call runs and syncs.

        onnxruntime's IO binding (Python API summary, "IOBinding": ``OrtValue.ortvalue_from_numpy(x, "cuda", 0)``,
        ``bind_ortvalue_input``, ``bind_output(name, "cuda")``, ``run_with_iobinding``), so no run copies anything
        between host and device. None on the CPU, where compute-only is end to end.
        """
        if self.device == "cpu":
            return None
        assert self._session is not None, "load() first"
        self.check_input(batch)
        import onnxruntime as ort

        session = self._session
        on_device = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch, dtype=np.float32), "cuda", 0)
        binding = session.io_binding()
        binding.bind_ortvalue_input(self._input, on_device)
        binding.bind_output(self._output, "cuda")

        def compute() -> None:
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()  # run_with_iobinding syncs the provider already; this says so explicitly

        return compute


def read_spec_from_bytes(data: bytes, artifact: Path) -> ModelSpec:
    """The spec in an ONNX file's metadata, read from its bytes and checked against the schema."""
    text = read_metadata(data, artifact).get(METADATA_KEY)
    if text is None:
        raise ArtifactError(f"{artifact} is an ONNX model but not a gantool model (no {METADATA_KEY} in its metadata)")
    try:
        return ModelSpec.from_json(text)
    except ArtifactError as exc:
        raise ArtifactError(f"{artifact}: {exc}") from None


def check_interface(artifact: Path, spec: ModelSpec, inputs: list[Any], outputs: list[Any]) -> None:
    """The graph's declared input and output must be what the spec says, on every axis the file fixes.

    The names come from the file (a GAN: "z" → "images", a translator: "images" → "translated"). A GAN takes
    float32 N×Z and gives N×C×H×W; a translator takes and gives N×C×H×W. An axis the file leaves symbolic
    (the batch, a translator's sides) is not checked here; one it fixes to another size than the spec's is a
    file whose graph and metadata disagree, refused now rather than failing inside onnxruntime on the first batch.
    """
    gan = spec.latent_dim is not None
    wanted_in: tuple[int | None, ...] = (None, spec.latent_dim) if gan else (None, spec.channels, None, None)
    wanted_out: tuple[int | None, ...] = (None, *spec.image_shape) if gan else (None, spec.channels, None, None)

    def fits(shape: Any, wanted: tuple[int | None, ...]) -> bool:
        return (
            isinstance(shape, list)
            and len(shape) == len(wanted)
            and all(
                want is None or not isinstance(dim, int) or dim == want for dim, want in zip(shape, wanted, strict=True)
            )
        )

    if (
        len(inputs) != 1
        or len(outputs) != 1
        or inputs[0].type != "tensor(float)"
        or outputs[0].type != "tensor(float)"
        or not fits(inputs[0].shape, wanted_in)
        or not fits(outputs[0].shape, wanted_out)
    ):
        shapes = "N×Z in, N×C×H×W out" if gan else "N×C×H×W in and out"
        raise ArtifactError(
            f"{artifact} does not have gantool's graph interface for its spec's {spec.kind} model "
            f"(one float32 input and one float32 output, {shapes}, matching the spec)"
        )


def run_bound(session: Any, input_name: str, output_name: str, batch: np.ndarray, device: str) -> np.ndarray:
    """One run with IO binding: input bound from numpy, output allocated on ``device``, copied out at the end.

    Follows onnxruntime's Python API summary ("IOBinding", scenario 1: ``bind_cpu_input``,
    ``bind_output(name, device_type)``, ``run_with_iobinding``, ``copy_outputs_to_cpu``). A fresh binding per
    run: the batch shape may change from one call to the next, and the output is reallocated to match.
    """
    binding = session.io_binding()
    binding.bind_cpu_input(input_name, batch)
    binding.bind_output(output_name, device)
    session.run_with_iobinding(binding)
    return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)


def require_provider(ort: Any, provider: str, hint: str) -> None:
    """BackendUnavailable with ``hint`` when this onnxruntime build lacks ``provider`` (e.g. the CPU build)."""
    if provider not in ort.get_available_providers():
        raise BackendUnavailable(hint)


def installed_distributions() -> set[str]:
    """Which of the onnxruntime packages are installed (both at once is a broken install: they share a module)."""
    found = set()
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            importlib.metadata.version(name)
            found.add(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
