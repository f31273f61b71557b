"""FID, KID, precision/recall and density/coverage on features whose answers are known.

Every test builds its own small feature sets (Gaussians, points on a line) and
states what the metric must say about them: 0 for identical sets, the closed
form for shifted or scaled Gaussians, hand-counted k-NN balls, and the same
numbers torchmetrics computes from the same features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gantool.benchmarks.quality import metrics
from gantool.benchmarks.quality.metrics import (
    Scores,
    compare,
    density_coverage,
    feature_stats,
    frechet_distance,
    frechet_from_stats,
    kernel_distance,
    precision_recall,
)
from gantool.errors import GantoolError, UsageError


def gaussian(n: int, d: int, mean: float | np.ndarray = 0.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * scale + mean


def test_identical_sets_are_at_distance_zero() -> None:
    scale = 5.0
    feats = gaussian(300, 8, scale=scale)
    assert abs(frechet_distance(feats, feats)) < 1e-6 * scale**2
    # With the subset as large as the set, every subset is the whole set: no noise (std 0). The unbiased
    # estimator drops k(x, x) within a set but keeps it across sets, so KID of a set with itself is slightly
    # negative, by at most 2·mean k(x, x)/(N - 1).
    kid, kid_std = kernel_distance(feats, feats, subsets=3, subset_size=1000)
    diagonal = ((np.einsum("ij,ij->i", feats, feats) / 8 + 1) ** 3).mean()
    assert -2 * diagonal / 299 <= kid <= 0 and kid_std == pytest.approx(0, abs=1e-9)
    assert precision_recall(feats, feats) == (1.0, 1.0)
    density, coverage = density_coverage(feats, feats, k=5)
    assert coverage == 1.0
    # Each real ball (radius: the 5th neighbour, strictly inside) holds its own point and 4 neighbours: 5 = k
    # fakes per ball, density 1 (with `<=` it would be (k + 1)/k = 1.2); rounding may move a boundary point.
    assert density == pytest.approx(1.0, abs=1e-2)


def test_fid_of_shifted_and_scaled_gaussians_matches_the_closed_form() -> None:
    mu = np.array([1.0, -0.5, 0.25, 0.0])
    shifted = frechet_distance(gaussian(20000, 4, seed=1), gaussian(20000, 4, mean=mu, seed=2))
    assert shifted == pytest.approx(mu @ mu, abs=0.1)  # |mu|² = 1.3125; sampling noise ≈ 0.02
    s1, s2 = 1.0, 2.0  # N(0, s1² I) vs N(0, s2² I): d (s1 - s2)²
    scaled = frechet_distance(gaussian(20000, 4, scale=s1, seed=3), gaussian(20000, 4, scale=s2, seed=4))
    assert scaled == pytest.approx(4 * (s1 - s2) ** 2, abs=0.1)


def test_frechet_from_exact_statistics_is_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    d1, d2 = rng.uniform(0.5, 3.0, 5), rng.uniform(0.5, 3.0, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    sigma1, sigma2 = rotation @ np.diag(d1) @ rotation.T, rotation @ np.diag(d2) @ rotation.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)  # they commute
    assert frechet_from_stats(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, abs=1e-8)


def test_cached_statistics_give_the_same_fid() -> None:
    real, fake = gaussian(500, 6, seed=1), gaussian(400, 6, mean=0.3, seed=2)
    mu, sigma = feature_stats(real)
    assert mu.shape == (6,) and sigma.shape == (6, 6)
    assert frechet_from_stats(mu, sigma, *feature_stats(fake)) == frechet_distance(real, fake)


def test_covariances_that_are_not_positive_semidefinite_are_refused() -> None:
    with pytest.raises(GantoolError, match="imaginary component"):
        frechet_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0]))


def test_fid_is_biased_at_small_n_and_kid_is_not() -> None:
    """Why a report compares FIDs only at one N: same distribution, FID ≈ d(d+5)/(2N) > 0, KID ≈ 0."""
    d, n = 8, 200
    pairs = [(gaussian(n, d, seed=2 * i), gaussian(n, d, seed=2 * i + 1)) for i in range(20)]
    fids = [frechet_distance(a, b) for a, b in pairs]
    assert np.mean(fids) == pytest.approx(d * (d + 5) / (2 * n), rel=0.2)  # 0.26
    kids = [kernel_distance(a, b, subsets=5, subset_size=n)[0] for a, b in pairs]
    assert abs(np.mean(kids)) < 3 * np.std(kids) / np.sqrt(len(kids))


def test_kid_tells_same_from_shifted_distributions() -> None:
    real = gaussian(1000, 8, seed=1)
    same = kernel_distance(real, gaussian(1000, 8, seed=2), subsets=50, subset_size=200)
    assert abs(same[0]) < 3 * same[1]
    shifted = kernel_distance(real, gaussian(1000, 8, mean=0.5, seed=2), subsets=50, subset_size=200)
    assert shifted[0] > 5 * shifted[1] > 0
    assert kernel_distance(real, real[::-1], subsets=5, subset_size=100, seed=7) == kernel_distance(
        real, real[::-1], subsets=5, subset_size=100, seed=7
    )  # seeded: reproducible


def test_k_nn_balls_counted_by_hand() -> None:
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])  # k=1: every radius is 1
    fake = np.array([[0.5], [10.0]])  # 0.5 lies in the balls of 0 and 1; 10 in none
    assert precision_recall(real, fake, k=1) == (0.5, 1.0)  # the fakes' radius is 9.5: it reaches all of real
    assert density_coverage(real, fake, k=1) == (1.0, 0.4)  # 2 balls / (k·M = 2); 2 of 5 balls hold a fake
    # On the boundary is outside (`<`, as the prdc reference): 5 and -1 are exactly 1 from 4 and 0.
    assert precision_recall(real, np.array([[5.0], [-1.0]]), k=1)[0] == 0.0
    assert density_coverage(real, np.array([[5.0], [-1.0]]), k=1) == (0.0, 0.0)


def test_far_away_fakes_and_a_subset_of_the_reals() -> None:
    real = gaussian(200, 4, seed=1)
    assert precision_recall(real, real + 1000.0) == (0.0, 0.0)
    assert density_coverage(real, real + 1000.0) == (0.0, 0.0)
    precision, recall = precision_recall(real, real[:100])  # every fake is a real sample: all faithful
    assert precision == 1.0 and 0 < recall < 1
    assert density_coverage(real, real[:100])[1] >= 0.5  # at least the balls of the 100 copied samples


def test_distances_in_blocks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = gaussian(120, 5, seed=1), gaussian(90, 5, mean=0.2, seed=2)
    whole = precision_recall(real, fake), density_coverage(real, fake)
    monkeypatch.setattr(metrics, "_BLOCK", 7 * 90 + 3)  # 7 rows (and 5 or 6 rows for real×real) per block
    assert (precision_recall(real, fake), density_coverage(real, fake)) == whole


def test_compare_reports_every_metric() -> None:
    real, fake = gaussian(300, 6, seed=1), gaussian(250, 6, mean=0.2, seed=2)
    scores = compare(real, fake, subsets=10, subset_size=100, seed=3)
    assert isinstance(scores, Scores) and (scores.n_a, scores.n_b) == (300, 250)
    assert scores.fid == frechet_distance(real, fake)
    assert (scores.kid_mean, scores.kid_std) == kernel_distance(real, fake, subsets=10, subset_size=100, seed=3)
    assert (scores.precision, scores.recall) == precision_recall(real, fake, k=3)
    assert (scores.density, scores.coverage) == density_coverage(real, fake, k=5)
    assert list(scores.as_dict()) == [
        "fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "n_a", "n_b"
    ]  # fmt: skip


class _Features:
    """torchmetrics' FID and KID with a custom feature module: here the identity, so both see the same features."""

    def __init__(self) -> None:
        torch = pytest.importorskip("torch")

        class Identity(torch.nn.Module):
            def __init__(self, dim: int) -> None:
                super().__init__()
                self.num_features = dim  # torchmetrics >= 1.3 reads it instead of probing with a dummy image

            def forward(self, x: Any) -> Any:
                return x

        self.torch, self.identity = torch, Identity

    def run(self, metric: Any, real: np.ndarray, fake: np.ndarray) -> Any:
        threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)  # 100×100 products: a thread pool only adds its overhead (seconds, if busy)
        try:
            metric.update(self.torch.from_numpy(real), real=True)
            metric.update(self.torch.from_numpy(fake), real=False)
            return metric.compute()
        finally:
            self.torch.set_num_threads(threads)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance`:UserWarning")
def test_torchmetrics_computes_the_same_fid_and_kid() -> None:
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    features = _Features()
    mixing = np.random.default_rng(9).normal(size=(16, 16))  # correlated, non-isotropic features
    real, fake = gaussian(400, 16, seed=1) @ mixing, np.tanh(gaussian(300, 16, mean=0.3, seed=2)) @ mixing

    theirs = features.run(FrechetInceptionDistance(feature=features.identity(16)), real, fake).item()
    assert frechet_distance(real, fake) == pytest.approx(theirs, rel=1e-9)

    # One subset as large as both sets: each side's subset is the whole set, so both are deterministic.
    kid = KernelInceptionDistance(feature=features.identity(16), subsets=1, subset_size=300)
    mean, std = features.run(kid, real[:300], fake)
    assert kernel_distance(real[:300], fake, subsets=1, subset_size=300) == (
        pytest.approx(mean.item(), rel=1e-9),
        pytest.approx(std.item(), abs=1e-12),
    )
    # Random subsets: each library draws its own, so the means agree within their sampling noise.
    features.torch.manual_seed(0)
    kid = KernelInceptionDistance(feature=features.identity(16), subsets=100, subset_size=100)
    mean, std = (v.item() for v in features.run(kid, real, fake))
    ours, our_std = kernel_distance(real, fake, subsets=100, subset_size=100)
    assert ours == pytest.approx(mean, abs=4 * np.hypot(std, our_std) / np.sqrt(100))
    assert our_std == pytest.approx(std, rel=0.3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: frechet_distance(np.zeros((10, 3)), np.zeros((10, 4))), "feature sizes differ"),
        (lambda: frechet_distance(np.zeros((1, 3)), np.zeros((10, 3))), "at least 2 samples"),
        (lambda: kernel_distance(np.zeros(10), np.zeros(10)), "N×d array"),
        (lambda: kernel_distance(np.ones((10, 3)), np.ones((10, 3)), subsets=0), "subsets >= 1"),
        (lambda: precision_recall(gaussian(10, 3), gaussian(3, 3), k=3), "fake features need at least 4"),
        (lambda: density_coverage(gaussian(5, 3), gaussian(10, 3), k=5), "real features need at least 6"),
        (lambda: precision_recall(gaussian(10, 3), gaussian(10, 3), k=0), "k must be a positive integer"),
        (lambda: compare(np.full((10, 3), np.nan), gaussian(10, 3)), "NaN or infinity"),
        (lambda: frechet_from_stats(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "statistics do not match"),
    ],
)
def test_bad_inputs_are_refused_in_one_line(call: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)
