"""The bundled digits extractor: it loads, is named by its hash, reads held-out digits, and refuses bad input.

Its accuracy is checked on the held-out test digits (never trained on), plain
and as digits-m's test B (over photo patches), which is exactly what
``gantool eval`` reads; the thresholds sit a margin below what the training
script measured, so another CPU's rounding cannot fail them but a broken
preprocessing or wrong weights file would.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from gantool.benchmarks.quality.digits_extractor import WEIGHTS_NAME, DigitsExtractor
from gantool.benchmarks.quality.extractors import open_extractor
from gantool.data import (
    digits_as_rgb,
    digits_labels,
    digits_m_indices,
    digits_test_split,
    load_digits_m,
    load_digits_mnist_style,
)
from gantool.errors import GantoolError, UsageError
from gantool.files import sha256_file

MEASURED_B = 0.973  # train_digits_extractor's digits-m test B accuracy for the bundled weights
MARGIN = 0.03


@pytest.fixture(scope="module")
def extractor() -> DigitsExtractor:
    return DigitsExtractor(device="cpu", batch_size=64)


@pytest.fixture(scope="module")
def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The held-out test digits (grey 28×28) and their labels."""
    digits = load_digits_mnist_style()
    test_index = digits_test_split(len(digits))[1]
    return digits[test_index], digits_labels()[test_index]


def bundled_path() -> Path:
    return Path(str(files("gantool.benchmarks.quality") / WEIGHTS_NAME))


def test_bundled_weights_load_and_are_named_by_their_hash(extractor: DigitsExtractor) -> None:
    assert bundled_path().is_file()
    assert extractor.sha256 == sha256_file(bundled_path())
    assert DigitsExtractor().sha256 == extractor.sha256  # stable from one load to the next
    assert isinstance(open_extractor("digits", device="cpu"), DigitsExtractor)
    described = extractor.describe()
    assert described["name"] == "digits" and described["dim"] == 128 and described["sha256"] == extractor.sha256
    assert described["input"] == "28×28, grey repeated to RGB, bilinear antialiased resize, /255"
    assert set(described["test_accuracy"]) == {"plain", "digits_m_a", "digits_m_b"}


def test_features_are_float64_and_do_not_depend_on_the_batch_size(
    extractor: DigitsExtractor, test_digits: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels = test_digits[0][:70]
    steps: list[int] = []
    features = extractor.features(pixels, advance=steps.append)
    assert features.shape == (70, 128) and features.dtype == np.float64
    assert steps == [64, 6]
    assert (features >= 0).all() and features.std() > 0  # post-ReLU, and not a dead network
    one_by_one = DigitsExtractor(batch_size=1).features(pixels)
    np.testing.assert_allclose(one_by_one, features, rtol=1e-5, atol=1e-5)
    probabilities = extractor.probabilities(pixels)
    assert probabilities.shape == (70, 10) and probabilities.dtype == np.float64
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-9)
    assert extractor.features(pixels[:0]).shape == (0, 128)


def test_reads_the_held_out_digits_plain_and_over_photos(
    extractor: DigitsExtractor, test_digits: tuple[np.ndarray, np.ndarray]
) -> None:
    pixels, labels = test_digits
    assert (extractor.predict(pixels) == labels).mean() >= 0.95
    test_a, test_b = load_digits_m(32, "test")
    a_index, b_index = digits_m_indices(1797, "test")
    assert (extractor.predict(test_a) == digits_labels()[a_index]).mean() >= 0.95
    accuracy_b = float((extractor.predict(test_b) == digits_labels()[b_index]).mean())
    assert accuracy_b >= MEASURED_B - MARGIN
    claimed = extractor.accuracy_on_test()
    assert abs(claimed["digits_m_b"] - accuracy_b) < 0.01  # the metadata tells the truth about these weights


def test_grey_28_and_rgb_32_inputs_read_alike(
    extractor: DigitsExtractor, test_digits: tuple[np.ndarray, np.ndarray]
) -> None:
    grey, labels = test_digits[0][:100], test_digits[1][:100]
    rgb_32 = digits_as_rgb(grey, 32)
    assert rgb_32.shape == (100, 32, 32, 3)
    assert extractor.features(rgb_32).shape == (100, 128)
    assert (extractor.predict(grey) == labels).mean() >= 0.95
    assert (extractor.predict(rgb_32) == labels).mean() >= 0.95
    np.testing.assert_allclose(  # grey is repeated to RGB: the same digit as RGB gives the same features
        extractor.features(np.repeat(grey, 3, axis=3)), extractor.features(grey), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((2, 28, 28), np.uint8),  # no channel axis
        np.zeros((2, 28, 28, 4), np.uint8),  # RGBA
        np.zeros((2, 28, 28, 2), np.uint8),
        np.zeros((2, 28, 28, 1), np.float32),  # not uint8
        np.zeros((2, 0, 28, 1), np.uint8),
    ],
    ids=["no-channels", "rgba", "two-channels", "float", "empty-image"],
)
def test_bad_input_is_a_usage_error(extractor: DigitsExtractor, pixels: np.ndarray) -> None:
    with pytest.raises(UsageError):
        extractor.features(pixels)
    with pytest.raises(UsageError):
        extractor.probabilities(pixels)


def test_corrupt_or_foreign_weights_are_one_clear_error(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    good = bundled_path().read_bytes()
    cases = {
        "garbage": b"not a safetensors file at all",
        "truncated": good[: len(good) // 2],
        "empty": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign"), metadata={"format": "something-else"})
    accuracies = {f"test_accuracy_{key}": "1" for key in ("plain", "digits_m_a", "digits_m_b")}
    metadata = {"format": "gantool-digits-extractor", "version": "1", **accuracies}  # right header, wrong tensors
    save_file({"x": torch.zeros(2)}, str(tmp_path / "wrong-tensors"), metadata=metadata)
    for name in [*cases, "foreign", "wrong-tensors", "missing"]:
        with pytest.raises(GantoolError) as caught:
            DigitsExtractor(weights=tmp_path / name)
        message = str(caught.value)
        assert str(tmp_path / name) in message and "\n" not in message and "Traceback" not in message


def test_the_weights_file_is_the_same_bytes_whatever_the_metadata_order(tmp_path: Path) -> None:
    """safetensors writes metadata in hash-map order; the training script sorts it, so a rerun hashes alike."""
    from gantool.benchmarks.quality.digits_cnn import DigitsCNN
    from gantool.benchmarks.quality.train_digits_extractor import write_weights

    state = DigitsCNN().state_dict()
    metadata = {f"key{i}": f"value {i}" for i in range(12)}
    write_weights(tmp_path / "forward", state, metadata)
    write_weights(tmp_path / "backward", state, dict(reversed(metadata.items())))
    assert (tmp_path / "forward").read_bytes() == (tmp_path / "backward").read_bytes()
