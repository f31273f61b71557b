"""Which NVIDIA GPUs this machine can use, asked cheaply: cuda-python, never torch.

The ``auto`` backend rule, ``gantool doctor`` and the backends' probes all need
to know whether a GPU is usable before anything heavy is imported. cuda-python
(the ``gpu`` extra) answers in milliseconds, without torch and without
onnxruntime, so the onnxruntime path stays lean. ``gantool.cuda`` is imported
here, inside the function, so a default CPU-only install never touches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gantool.errors import GantoolError

if TYPE_CHECKING:
    from gantool.cuda import GpuInfo


@dataclass(frozen=True)
class GpuScan:
    """The GPUs found (possibly none) and, when there are none, why: ``no usable CUDA driver: ...``."""

    gpus: tuple[GpuInfo, ...]
    why_not: str = ""

    @property
    def usable(self) -> bool:
        return bool(self.gpus)

    @property
    def first(self) -> str:
        """``GPU NVIDIA H100 80GB HBM3``: the device a backend on ``cuda`` runs on (device 0)."""
        return f"GPU {self.gpus[0].name}" if self.gpus else "no GPU"


def scan() -> GpuScan:
    """The usable GPUs via cuda-python; never raises (a missing cuda-python or driver is the ``why_not``)."""
    try:
        from gantool import cuda

        found = tuple(cuda.gpus())
    except GantoolError as exc:  # BackendUnavailable: cuda-python missing, no driver, driver too old
        return GpuScan((), str(exc))
    except ImportError as exc:  # a broken cuda-python install
        return GpuScan((), f"cuda-python cannot be imported ({exc})")
    return GpuScan(found, "" if found else "the CUDA driver sees no GPU")
