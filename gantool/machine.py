"""Facts about this machine that reports name: doctor's header and bench's environment block share them."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# /proc/cpuinfo flags behind each low-precision feature gantool reports: int8 dot products (VNNI, which
# onnxruntime's INT8 kernels use), bf16 arithmetic, and Intel's matrix tiles (AMX), which do both.
CPU_FEATURE_FLAGS = {
    "vnni": ("avx512_vnni", "avx_vnni"),
    "bf16": ("avx512_bf16", "amx_bf16"),
    "amx": ("amx_tile",),
}


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, bool]:
    """Whether the CPU has VNNI, BF16 and AMX, read from its flags (Linux); all False where none can be read.

    Read from the kernel's flags rather than from torch or onnxruntime, so asking costs no import: the
    onnxruntime path never loads torch.
    """
    flags: set[str] = set()
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {feature: any(flag in flags for flag in names) for feature, names in CPU_FEATURE_FLAGS.items()}


def describe_cpu_features(features: dict[str, bool]) -> str:
    """``VNNI yes, BF16 yes, AMX no`` for doctor's header."""
    return ", ".join(f"{name.upper()} {'yes' if features[name] else 'no'}" for name in CPU_FEATURE_FLAGS)
