"""The quality verdict a lower-precision artifact carries, read for ``--backend auto``.

``auto`` picks by speed, and speed alone would pick an INT8 file that draws
worse images. So a lower precision is a candidate only when its file carries
a verdict that passed (``export --int8`` stores it under ``gantool.quality``
in the ONNX metadata) *for this model*: measured against the checkpoint
that is beside it now (its sha256 is in the verdict), not forced past a
loss with ``--force-int8``. Read from the protobuf bytes, without importing
onnx or onnxruntime; any doubt (no verdict, unreadable, another checkpoint)
means "no verdict", and ``auto`` stays at FP32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantool.errors import ArtifactError
from gantool.runtime.onnx_file import read_metadata
from gantool.spec import QUALITY_KEY


@dataclass(frozen=True)
class Verdict:
    """A passing verdict, and its one-line summary for ``auto``'s reason."""

    text: str
    kid_delta: float | None

    def describe(self) -> str:
        """``quality verdict: no measurable loss, KID Δ -0.012 vs real``."""
        verdict = self.text.split(":")[0]
        delta = "" if self.kid_delta is None else f", KID Δ {self.kid_delta:+.3g} vs real"
        return f"quality verdict: {verdict}{delta}"


def read_verdict(artifact: Path) -> dict[str, Any] | None:
    """The verdict stored in an ONNX file's metadata, or None (none stored, or the file cannot be read)."""
    try:
        text = read_metadata(artifact.read_bytes(), artifact).get(QUALITY_KEY)
        verdict = json.loads(text) if text is not None else None
    except (OSError, ArtifactError, ValueError):
        return None
    return verdict if isinstance(verdict, dict) else None


def passing_verdict(artifact: Path, checkpoint: Path | None) -> Verdict | None:
    """The ONNX artifact's verdict when it passed, unforced, against ``checkpoint`` as it is now; else None."""
    return passing(read_verdict(artifact), checkpoint)


def passing(verdict: Any, checkpoint: Path | None) -> Verdict | None:
    """``verdict`` (from a file's metadata or an engine's sidecar) when it passed, unforced, for ``checkpoint``."""
    from gantool.files import sha256_file

    if not isinstance(verdict, dict) or checkpoint is None:
        return None
    if verdict.get("passed") is not True or verdict.get("forced") is not False:
        return None
    try:
        if verdict.get("checkpoint_sha256") != sha256_file(checkpoint):
            return None
    except OSError:
        return None
    delta = verdict.get("kid_delta")
    return Verdict(str(verdict.get("verdict", "")), float(delta) if isinstance(delta, (int, float)) else None)
