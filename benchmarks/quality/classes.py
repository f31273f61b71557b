"""What a digit classifier says about a set of images: which digits, how evenly, how surely, and kept or not.

A generator can have a good FID and still draw mostly 1s; a translator can
give the right texture and the wrong digit. These figures catch both: the
share of each class, the entropy of that distribution (log2 10 = 3.32 bits
when every digit is equally common), the mean confidence of the top class,
and, where the true digit of each input is known, how often it is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gantool.benchmarks.quality.features import FeatureReader

CLASSES = 10


def summarise(probabilities: np.ndarray, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Class shares, their entropy in bits, mean top-class confidence, and accuracy when ``labels`` are given."""
    predicted = probabilities.argmax(axis=1)
    shares = np.bincount(predicted, minlength=probabilities.shape[1]) / max(len(predicted), 1)
    nonzero = shares[shares > 0]
    summary: dict[str, Any] = {
        "n": len(predicted),
        "class_shares": [round(float(share), 4) for share in shares],
        "min_class_share": float(shares.min()),
        "entropy_bits": abs(float(-(nonzero * np.log2(nonzero)).sum())),  # abs: no "-0.00" for one class
        "mean_confidence": float(probabilities.max(axis=1).mean()),
    }
    if labels is not None:
        summary["keeps_label"] = float((predicted == labels).mean())
    return summary


def agreement(reader: FeatureReader, pixels: np.ndarray, labels: np.ndarray) -> float | None:
    """The share of ``pixels`` the classifier reads as ``labels`` (None when the extractor is no classifier)."""
    probabilities = reader.probabilities(pixels, "reading the digits")
    if probabilities is None:
        return None
    return float((probabilities.argmax(axis=1) == labels).mean())
