"""A batch that does not fit in memory: recognise it, free what can be freed, suggest a size.

Each engine says "out of memory" its own way: Python's MemoryError (numpy's
``_ArrayMemoryError`` is one), torch's ``OutOfMemoryError`` (CUDA) and its CPU
allocator's RuntimeError ("DefaultCPUAllocator: not enough memory" / "can't
allocate memory"), onnxruntime's RuntimeException ("BFCArena::AllocateRawInternal
Failed to allocate memory for requested buffer of size N", "bad allocation" /
"std::bad_alloc"), cuBLAS/cuDNN's ``*_ALLOC_FAILED``, an OSError ENOMEM. They
are classified here, once, for ``generate`` and ``translate``. The backends
already turn a GPU out-of-memory into a one-line GantoolError of their own;
that message is kept (a TensorRT engine's advice differs), only the GPU cache
is freed for it too.
"""

from __future__ import annotations

import contextlib
import errno
import sys
from collections.abc import Iterator

from gantool.errors import GantoolError

OUT_OF_MEMORY_WORDS = (
    "out of memory",
    "not enough memory",
    "can't allocate memory",
    "cannot allocate memory",
    "failed to allocate memory",
    "bad allocation",
    "bad_alloc",
    "_alloc_failed",
)
BACKEND_GPU_OOM_PREFIX = "out of GPU memory"  # the backends' own GantoolError for a CUDA OOM


class OutOfMemory(GantoolError):
    """A batch did not fit in host or GPU memory; the message suggests a smaller --batch-size."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an engine's way of saying it ran out of (host or GPU) memory."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOMEM
    if isinstance(exc, GantoolError) or not isinstance(exc, Exception):
        return False
    text = str(exc).lower()
    return any(words in text for words in OUT_OF_MEMORY_WORDS)


def free_gpu_memory() -> None:
    """Return torch's cached CUDA blocks to the driver, if torch is loaded and has touched the GPU.

    torch is never imported here: the onnxruntime and TensorRT paths must not pay for it.
    """
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def suggestion(batch_size: int, on_gpu: bool) -> str:
    where = "GPU memory" if on_gpu else "memory"
    if batch_size > 1:
        return f"a batch of {batch_size} images does not fit in {where}: try --batch-size {batch_size // 2}"
    return f"even one image at a time does not fit in {where}: free some memory, or use a smaller model or --size"


@contextlib.contextmanager
def batch_memory(batch_size: int) -> Iterator[None]:
    """Turn an out-of-memory failure inside the block into one line suggesting half the batch size."""
    try:
        yield
    except GantoolError as exc:
        if str(exc).startswith(BACKEND_GPU_OOM_PREFIX):
            free_gpu_memory()
        raise
    except BaseException as exc:
        if not is_out_of_memory(exc):
            raise
        on_gpu = type(exc).__name__ == "OutOfMemoryError" or "cuda" in str(exc).lower()
        free_gpu_memory()
        raise OutOfMemory(suggestion(batch_size, on_gpu)) from None
