"""CUDA through cuda-python: device facts, a stream, device and pinned host memory, CUDA graphs. No torch.

The TensorRT path must not pay for torch (≈1.2 s and ≈200 MB just to import),
so its memory, copies and streams go through NVIDIA's own thin bindings:
``from cuda.bindings import runtime as cudart`` (cuda-python ≥ 12.6; the old
``cuda.cudart`` module is gone in 13). Every call returns ``(error, *values)``;
``check`` turns a failure into one line the user can act on:

- no driver, a driver too old for the runtime, no GPU → BackendUnavailable
  ("no usable CUDA driver: ..."), the same words on every call site;
- out of GPU memory → "out of GPU memory while <what>: try a smaller --batch-size";
- anything else → "CUDA error while <what>: <CUDA's own description>".

The buffer, copy and graph calls follow NVIDIA's TensorRT Python sample
``samples/python/common_runtime.py`` (cudaMallocHost + a numpy view of the
pinned memory, cudaMalloc, cudaMemcpyAsync on one stream) and the TensorRT
developer guide's "CUDA Graphs" section (cudaStreamBeginCapture,
cudaStreamEndCapture, cudaGraphInstantiate(graph, 0), cudaGraphLaunch).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gantool.errors import BackendUnavailable, GantoolError

INSTALL_HINT = 'pip install "gantool[gpu]"'
OOM_HINT = "try a smaller --batch-size"
# cudaError_t names that mean "this machine cannot run CUDA at all", not "this call went wrong".
NO_DRIVER_ERRORS = frozenset(
    {
        "cudaErrorInsufficientDriver",
        "cudaErrorSystemDriverMismatch",
        "cudaErrorCompatNotSupportedOnDevice",
        "cudaErrorCallRequiresNewerDriver",
        "cudaErrorInitializationError",
    }
)
NO_DEVICE_ERRORS = frozenset({"cudaErrorNoDevice", "cudaErrorDevicesUnavailable", "cudaErrorInvalidDevice"})


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device as ``gantool doctor`` and the engine sidecar describe it."""

    index: int
    name: str  # "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "9.0"
    memory_mb: int  # MiB, as nvidia-smi counts them

    def describe(self) -> str:
        """``cuda:0 NVIDIA H100 80GB HBM3 (sm 9.0, 81559 MiB)``."""
        return f"cuda:{self.index} {self.name} (sm {self.compute_capability}, {self.memory_mb} MiB)"


def cuda_runtime() -> Any:
    """``cuda.bindings.runtime``; BackendUnavailable with the install hint if cuda-python (≥ 12.6) is missing."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        raise BackendUnavailable(f"cuda-python (12.6 or newer) is not installed: {INSTALL_HINT}") from None
    return cudart


def check(result: tuple[Any, ...], what: str, oom_hint: str = OOM_HINT) -> Any:
    """Unpack a cuda-python ``(error, *values)`` result: the value (a tuple if several, None if none), or raise.

    ``what`` completes "while ...", e.g. "allocating GPU memory for the engine's outputs".
    """
    error, *values = result
    if int(error) != 0:  # cudaSuccess (and CUDA_SUCCESS) is 0; cudaError_t is an int enum
        name = getattr(error, "name", str(error))
        raise cuda_error(name, _describe(error), what, oom_hint)
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def cuda_error(name: str, description: str, what: str, oom_hint: str = OOM_HINT) -> GantoolError:
    """The one-line error for a failed CUDA call: unavailable machine, out of memory, or the call's own failure."""
    if name == "cudaErrorInsufficientDriver":  # no driver at all, or one older than cuda-python's CUDA
        cudart = cuda_runtime()
        _, driver = cudart.cudaDriverGetVersion()
        _, runtime = cudart.cudaRuntimeGetVersion()
        return BackendUnavailable(f"no usable CUDA driver: {insufficient_driver(driver or 0, runtime or 0)} ({name})")
    if name in NO_DRIVER_ERRORS:
        return BackendUnavailable(f"no usable CUDA driver: {description} ({name})")
    if name in NO_DEVICE_ERRORS:
        return BackendUnavailable(f"no usable CUDA GPU: {description} ({name})")
    if name == "cudaErrorMemoryAllocation":
        return GantoolError(f"out of GPU memory while {what}: {oom_hint}")
    return GantoolError(f"CUDA error while {what}: {description} ({name})")


def insufficient_driver(driver: int, runtime: int) -> str:
    """Why CUDA reports an insufficient driver: none installed, or one older than the CUDA cuda-python is built for."""
    if driver == 0:
        return "no NVIDIA driver is installed"
    return (
        f"the driver supports CUDA {format_cuda_version(driver)}, cuda-python here is built for CUDA "
        f'{format_cuda_version(runtime)}: update the driver, or pip install "cuda-python<{runtime // 1000}"'
    )


def format_cuda_version(version: int) -> str:
    """CUDA's integer versions (1000 × major + 10 × minor) as text: 12090 → "12.9"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def driver_cuda_version() -> str:
    """The newest CUDA version the installed driver supports, e.g. "12.9"; BackendUnavailable without a driver."""
    cudart = cuda_runtime()
    version = check(cudart.cudaDriverGetVersion(), "asking the driver for its CUDA version")
    if version == 0:  # documented: 0 when no driver is installed
        raise BackendUnavailable(f"no usable CUDA driver: {insufficient_driver(0, 0)}")
    return format_cuda_version(version)


def runtime_cuda_version() -> str:
    """The CUDA runtime version cuda-python provides, e.g. "12.9" (needs no driver)."""
    return format_cuda_version(check(cuda_runtime().cudaRuntimeGetVersion(), "asking for the CUDA runtime version"))


def gpu(index: int) -> GpuInfo:
    """Name, compute capability and memory of CUDA device ``index``."""
    props = check(cuda_runtime().cudaGetDeviceProperties(index), f"reading the properties of GPU {index}")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    return GpuInfo(index, str(name).strip(), f"{props.major}.{props.minor}", int(props.totalGlobalMem) // 2**20)


def gpus() -> list[GpuInfo]:
    """Every CUDA device here; BackendUnavailable ("no usable CUDA driver: ...") without a driver or a GPU."""
    count = check(cuda_runtime().cudaGetDeviceCount(), "counting CUDA GPUs")
    return [gpu(index) for index in range(count)]


class Stream:
    """One non-blocking CUDA stream: TensorRT asks for a stream other than the legacy default one."""

    def __init__(self) -> None:
        cudart = cuda_runtime()
        self.raw: Any = check(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking), "creating a CUDA stream")

    @property
    def handle(self) -> int:
        """The stream's address, as TensorRT's ``execute_async_v3(stream_handle)`` takes it."""
        return int(self.raw)

    def synchronize(self) -> None:
        check(cuda_runtime().cudaStreamSynchronize(self.raw), "waiting for the GPU")

    def close(self) -> None:
        if self.raw is not None:
            check(cuda_runtime().cudaStreamDestroy(self.raw), "destroying a CUDA stream")
            self.raw = None


class DeviceBuffer:
    """``nbytes`` of GPU memory (cudaMalloc); ``ptr`` is the address TensorRT's set_tensor_address takes."""

    def __init__(self, nbytes: int, what: str = "allocating GPU memory", oom_hint: str = OOM_HINT) -> None:
        self.nbytes = nbytes
        self.ptr: int = int(check(cuda_runtime().cudaMalloc(nbytes), what, oom_hint))

    def close(self) -> None:
        if self.ptr:
            check(cuda_runtime().cudaFree(self.ptr), "freeing GPU memory")
            self.ptr = 0


class PinnedBuffer:
    """``nbytes`` of page-locked host memory (cudaMallocHost): the fast, truly asynchronous side of a copy.

    ``array(shape)`` views the first bytes as float32 without copying; views are
    valid until ``close()``, so callers copy results out before reusing the buffer.
    """

    def __init__(self, nbytes: int, what: str = "allocating pinned host memory", oom_hint: str = OOM_HINT) -> None:
        self.nbytes = nbytes
        self.ptr: int = int(check(cuda_runtime().cudaMallocHost(nbytes), what, oom_hint))
        self._bytes = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(self.ptr))

    def array(self, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 view of shape ``shape`` over the start of the buffer."""
        count = int(np.prod(shape))
        if count * 4 > self.nbytes:
            raise ValueError(f"shape {shape} needs {count * 4} bytes, the buffer holds {self.nbytes}")
        return self._bytes[: count * 4].view(np.float32).reshape(shape)

    def close(self) -> None:
        if self.ptr:
            check(cuda_runtime().cudaFreeHost(self.ptr), "freeing pinned host memory")
            self.ptr = 0


def copy_to_device(dst: DeviceBuffer, src: PinnedBuffer, nbytes: int, stream: Stream) -> None:
    """Enqueue a host → device copy of ``nbytes`` on ``stream``."""
    cudart = cuda_runtime()
    kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, kind, stream.raw), "copying inputs to the GPU")


def copy_to_host(dst: PinnedBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    """Enqueue a device → host copy of ``nbytes`` on ``stream``."""
    cudart = cuda_runtime()
    kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, kind, stream.raw), "copying outputs from the GPU")


class CudaGraph:
    """An instantiated CUDA graph: one launch replays all the work captured on a stream."""

    def __init__(self, graph_exec: Any) -> None:
        self._exec = graph_exec

    def launch(self, stream: Stream) -> None:
        check(cuda_runtime().cudaGraphLaunch(self._exec, stream.raw), "launching a CUDA graph")

    def close(self) -> None:
        if self._exec is not None:
            check(cuda_runtime().cudaGraphExecDestroy(self._exec), "destroying a CUDA graph")
            self._exec = None


def capture_graph(stream: Stream, work: Callable[[], None]) -> CudaGraph | None:
    """Capture what ``work`` enqueues on ``stream`` into a graph; None if this work cannot be captured.

    Thread-local capture mode: only this thread's unsafe calls are refused while
    capturing, so PNG-writer threads elsewhere are unaffected. A capture can fail
    for reasons the caller cannot fix (a model with loops or conditionals,
    TensorRT's docs say: cudaStreamEndCapture then returns a cudaErrorStreamCapture*
    error, and the context still runs without graphs); that is reported as None
    so the caller falls back to plain enqueues. ``work`` signals its own failure
    by raising GantoolError, which also means "not capturable".
    """
    cudart = cuda_runtime()
    mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
    (error,) = cudart.cudaStreamBeginCapture(stream.raw, mode)
    if int(error) != 0:
        cudart.cudaGetLastError()  # clear it: the stream still works uncaptured
        return None
    failed = True
    try:
        work()
        failed = False
    except GantoolError:
        pass  # not capturable: reported as None below
    finally:  # whatever happened, the stream leaves capture mode
        error, graph = cudart.cudaStreamEndCapture(stream.raw)
    if failed or int(error) != 0 or graph is None:
        if graph is not None:
            cudart.cudaGraphDestroy(graph)
        cudart.cudaGetLastError()
        return None
    error, graph_exec = cudart.cudaGraphInstantiate(graph, 0)
    check(cudart.cudaGraphDestroy(graph), "destroying a captured CUDA graph")  # the instance keeps what it needs
    if int(error) != 0:
        cudart.cudaGetLastError()
        return None
    return CudaGraph(graph_exec)


def _describe(error: Any) -> str:
    """CUDA's own sentence for an error code (works without a driver)."""
    try:
        status, text = cuda_runtime().cudaGetErrorString(error)
    except (TypeError, ValueError):
        return str(error)
    if int(status) != 0 or text is None:
        return str(error)
    return text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)
