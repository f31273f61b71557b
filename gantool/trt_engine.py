"""Running a TensorRT engine plan: shared by ``gantool export --trt`` (its parity check) and the tensorrt backend.

Written against TensorRT's name-based runtime API, which 10.x introduced and
11.x keeps unchanged (the 10→11 migration guide removes builder-side weak
typing — BuilderFlag.FP16 and friends — and the V2 plugin/algorithm APIs, none
of which a runtime uses): ``Runtime.deserialize_cuda_engine``,
``num_io_tensors`` / ``get_tensor_name`` / ``get_tensor_mode``,
``IExecutionContext.set_input_shape`` / ``set_tensor_address`` /
``execute_async_v3``. So there is one runtime code path for both majors; only
the builder (export/tensorrt_build.py) branches by version.

Memory follows NVIDIA's ``samples/python/common_runtime.py``: device buffers
sized once for the profile's largest shape, pinned host staging, async copies
on one stream. Each input shape gets a CUDA graph holding copy-in, inference
and copy-out, captured after one plain run (TensorRT's "CUDA Graphs" guide:
call execute_async_v3 once after a shape change, then capture); a shape whose
capture fails keeps using plain enqueues, and that is remembered.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from gantool import cuda
from gantool.engines import MachineFacts, Profile, Shape, split_batch
from gantool.errors import ArtifactError, BackendUnavailable, GantoolError, UsageError

if TYPE_CHECKING:  # the vendored stubs (tests/typings) type-check every call below
    import tensorrt
    from typing_extensions import Self

INSTALL_HINT = 'pip install "gantool[trt]" on a machine with an NVIDIA GPU (README: GPUs and TensorRT)'
FLOAT32_BYTES = 4
ENGINE_OOM_HINT = "rebuild the engine with a smaller --max-batch (gantool export --trt)"
_Resource = TypeVar("_Resource", cuda.Stream, cuda.DeviceBuffer, cuda.PinnedBuffer)


def is_real_tensorrt(module: Any) -> bool:
    """The stubs packages leave an importable namespace package named ``tensorrt``; real TensorRT has these."""
    return hasattr(module, "__version__") and hasattr(module, "Builder")


def import_tensorrt() -> Any:
    """The real ``tensorrt`` module, or BackendUnavailable saying how to install it (or why it fails to load)."""
    if importlib.util.find_spec("tensorrt") is None:
        raise BackendUnavailable(f"TensorRT is not installed: {INSTALL_HINT}")
    try:
        import tensorrt
    except ImportError as exc:  # e.g. the wheel is there but libnvinfer.so is not
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendUnavailable(f"TensorRT is installed but cannot load ({reason}): {INSTALL_HINT}") from None
    if not is_real_tensorrt(tensorrt):
        raise BackendUnavailable(f"TensorRT is not installed (only its type stubs are): {INSTALL_HINT}")
    return tensorrt


def tensorrt_major(trt: Any) -> int:
    """10 for "10.13.0.35"."""
    major = str(trt.__version__).split(".", 1)[0]
    if not major.isdigit():
        raise BackendUnavailable(f"cannot read TensorRT's version {trt.__version__!r}")
    return int(major)


def machine_facts(trt: Any, device: int = 0) -> MachineFacts:
    """What an engine plan depends on, here: TensorRT version, GPU, compute capability, CUDA versions."""
    gpu = cuda.gpu(device)
    return MachineFacts(
        tensorrt_version=str(trt.__version__),
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        cuda_driver=cuda.driver_cuda_version(),
        cuda_runtime=cuda.runtime_cuda_version(),
    )


def plan_chunks(shape: Shape, profile: Profile) -> list[tuple[int, int, int]]:
    """How a batch of ``shape`` meets the profile: ``(start, stop, run_batch)`` per engine run.

    H/W outside the profile is refused (UsageError); batches above max_batch are
    split; a chunk below min_batch runs zero-padded up to it (the padding rows'
    outputs are dropped).
    """
    profile.check_item_shape(shape)
    return [
        (start, stop, max(stop - start, profile.min[0])) for start, stop in split_batch(shape[0], profile.max_batch)
    ]


def nbytes(shape: Shape) -> int:
    """Bytes of a float32 tensor of ``shape``."""
    return int(np.prod(shape)) * FLOAT32_BYTES


def graph_key(shape: Shape) -> Shape:
    """CUDA graphs are cached per exact input shape: a graph bakes in every kernel's launch sizes."""
    return tuple(int(side) for side in shape)


class EngineRunner:
    """One deserialised engine with one execution context, one stream and its buffers: float32 in, float32 out."""

    def __init__(self, plan: bytes, profile: Profile, *, where: str, use_graphs: bool = True) -> None:
        trt = import_tensorrt()
        self._where, self._profile, self._use_graphs = where, profile, use_graphs
        self._logger = trt.Logger(trt.Logger.ERROR)
        self._runtime: tensorrt.Runtime = trt.Runtime(self._logger)
        engine: tensorrt.ICudaEngine | None = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise ArtifactError(f"{where}: TensorRT could not deserialise this engine plan (corrupt or truncated?)")
        self._engine = engine
        self._check_io(trt, engine)
        context: tensorrt.IExecutionContext | None = engine.create_execution_context()
        if context is None:
            raise GantoolError(f"{where}: TensorRT could not create an execution context (out of GPU memory?)")
        self._context = context
        self._graphs: dict[Shape, cuda.CudaGraph | None] = {}
        self._compute_graphs: dict[Shape, cuda.CudaGraph | None] = {}  # inference only, for compute_fn
        self._output_shapes: dict[Shape, Shape] = {}
        self._shape: Shape | None = None
        self._resources: list[cuda.Stream | cuda.DeviceBuffer | cuda.PinnedBuffer] = []
        try:
            self._allocate()
        except BaseException:
            self.close()
            raise

    def _allocate(self) -> None:
        """Stream and buffers for the profile's largest shape, bound to the context once (their addresses never move)."""
        profile = self._profile
        max_output = self._set_shape(profile.max)
        what = f"allocating buffers for {self._where}'s max batch of {profile.max_batch}"
        self._stream = self._track(cuda.Stream())
        self._device_in = self._track(cuda.DeviceBuffer(nbytes(profile.max), what, ENGINE_OOM_HINT))
        self._device_out = self._track(cuda.DeviceBuffer(nbytes(max_output), what, ENGINE_OOM_HINT))
        self._host_in = self._track(cuda.PinnedBuffer(nbytes(profile.max), what, ENGINE_OOM_HINT))
        self._host_out = self._track(cuda.PinnedBuffer(nbytes(max_output), what, ENGINE_OOM_HINT))
        for name, buffer in ((profile.input_name, self._device_in), (profile.output_name, self._device_out)):
            if not self._context.set_tensor_address(name, buffer.ptr):
                raise ArtifactError(f"{self._where}: TensorRT refused the buffer for tensor {name!r}")

    def _track(self, resource: _Resource) -> _Resource:
        self._resources.append(resource)
        return resource

    def _check_io(self, trt: Any, engine: tensorrt.ICudaEngine) -> None:
        """The plan must have the sidecar's one float32 input and one float32 output, by name."""
        names = [engine.get_tensor_name(index) for index in range(engine.num_io_tensors)]
        inputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT]
        outputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT]
        expected = ([self._profile.input_name], [self._profile.output_name])
        if (inputs, outputs) != expected or any(engine.get_tensor_dtype(name) != trt.DataType.FLOAT for name in names):
            raise ArtifactError(
                f"{self._where}: the engine's tensors (inputs {inputs}, outputs {outputs}) are not the float32 "
                f"{expected[0][0]!r} → {expected[1][0]!r} its sidecar describes"
            )

    def _set_shape(self, shape: Shape) -> Shape:
        """Tell the context the input shape (only when it changes) and return the output shape for it."""
        if shape != self._shape:
            if not self._context.set_input_shape(self._profile.input_name, shape):
                raise UsageError(f"{self._where}: input shape {shape} is outside the engine's profile")
            self._shape = shape
        if shape not in self._output_shapes:
            dims = self._context.get_tensor_shape(self._profile.output_name)
            output = tuple(int(dims[axis]) for axis in range(len(dims)))
            if any(side < 0 for side in output):
                raise ArtifactError(f"{self._where}: TensorRT cannot infer the output shape for input {shape}")
            self._output_shapes[shape] = output
        return self._output_shapes[shape]

    def _enqueue(self, shape: Shape, output: Shape) -> None:
        """Copy in, infer, copy out: all asynchronous on the one stream."""
        cuda.copy_to_device(self._device_in, self._host_in, nbytes(shape), self._stream)
        if not self._context.execute_async_v3(self._stream.handle):
            raise GantoolError(f"{self._where}: TensorRT failed to run the engine (its error is printed above)")
        cuda.copy_to_host(self._host_out, self._device_out, nbytes(output), self._stream)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        shape = graph_key(chunk.shape)
        output = self._set_shape(shape)
        self._host_in.array(shape)[...] = chunk
        if shape not in self._graphs:
            self._enqueue(shape, output)  # the plain run after a shape change that capture needs first
            self._stream.synchronize()
            result = self._fetch(output)
            self._graphs[shape] = (
                cuda.capture_graph(self._stream, lambda: self._enqueue(shape, output)) if self._use_graphs else None
            )
            return result
        graph = self._graphs[shape]
        if graph is None:
            self._enqueue(shape, output)
        else:
            graph.launch(self._stream)
        self._stream.synchronize()
        return self._fetch(output)

    def _fetch(self, output: Shape) -> np.ndarray:
        """The finished outputs, copied out of the pinned buffer (the next run overwrites it)."""
        return np.array(self._host_out.array(output), copy=True)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 inputs of any batch size → float32 outputs; H/W outside the profile is a UsageError."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        results = []
        for start, stop, run_batch in plan_chunks(graph_key(batch.shape), self._profile):
            chunk = batch[start:stop]
            if run_batch > len(chunk):
                chunk = np.concatenate([chunk, np.zeros((run_batch - len(chunk), *chunk.shape[1:]), np.float32)])
            results.append(self._run_chunk(chunk)[: stop - start])
        if not results:
            output = self._set_shape((self._profile.min[0], *batch.shape[1:]))
            return np.zeros((0, *output[1:]), dtype=np.float32)
        return results[0] if len(results) == 1 else np.concatenate(results)

    def compute_fn(self, batch: np.ndarray) -> Callable[[], None]:
        """A callable running the engine on ``batch`` staged on the GPU here, once: inference and a stream sync only.

        For ``gantool bench``'s compute-only figure: no host↔device copy runs per
        call. A batch that fits one engine run replays a CUDA graph of the inference
        alone (captured after one plain run, as ``run`` does), so the figure compares
        with ``run``'s graphs. A batch the profile splits enqueues each chunk's shape
        on the first chunk's data: the work of the network does not depend on the
        values. The engine has one input buffer, so the last batch staged is the one
        every such callable reads.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        chunks = plan_chunks(graph_key(batch.shape), self._profile)
        shapes = [(run_batch, *graph_key(batch.shape[1:])) for _, _, run_batch in chunks]
        start, stop, _ = chunks[0]
        staged = self._host_in.array(shapes[0])
        staged[: stop - start] = batch[start:stop]
        staged[stop - start :] = 0  # padding up to the profile's min batch
        cuda.copy_to_device(self._device_in, self._host_in, nbytes(shapes[0]), self._stream)
        self._stream.synchronize()

        def infer() -> None:
            for shape in shapes:
                self._set_shape(shape)
                if not self._context.execute_async_v3(self._stream.handle):
                    raise GantoolError(f"{self._where}: TensorRT failed to run the engine (its error is printed above)")

        graph = self._compute_graph(shapes[0], infer) if len(shapes) == 1 else None
        stream = self._stream

        def compute() -> None:
            if graph is None:
                infer()
            else:
                self._set_shape(shapes[0])  # run() may have left another shape on the context
                graph.launch(stream)
            stream.synchronize()

        return compute

    def _compute_graph(self, shape: Shape, infer: Callable[[], None]) -> cuda.CudaGraph | None:
        """The inference-only graph for ``shape``: one plain run after the shape is set, then capture (cached)."""
        if shape not in self._compute_graphs:
            graph = None
            if self._use_graphs:
                infer()
                self._stream.synchronize()
                graph = cuda.capture_graph(self._stream, infer)
            self._compute_graphs[shape] = graph
        return self._compute_graphs[shape]

    def close(self) -> None:
        """Free the graphs, buffers and stream (the engine and context go with this object)."""
        for graph in (*self._graphs.values(), *self._compute_graphs.values()):
            if graph is not None:
                graph.close()
        self._graphs.clear()
        self._compute_graphs.clear()
        while self._resources:
            self._resources.pop().close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
