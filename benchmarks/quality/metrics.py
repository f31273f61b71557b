"""Distances between two sets of feature vectors (N×d float arrays), computed as the field reports them.

* FID (Heusel et al. 2017), as pytorch-fid computes it: the Fréchet distance between Gaussians fitted to the
  two sets. It is biased upward at small N: two samples of N from the same N(0, I_d) score about
  d(d+5)/(2N), not 0. So FIDs compare only at the same N (and extractor), and every report carries a noise
  floor measured at that N.
* KID (Bińkowski et al. 2018), as torch-fidelity and torchmetrics compute it: an unbiased MMD² with a cubic
  polynomial kernel, averaged over random subsets. It is 0 on average for equal distributions at any N.
* precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020): k-nearest-neighbour
  balls around each sample as an estimate of each set's support; fidelity and diversity as separate numbers.

The k-NN metrics follow the reference code of Naeem et al. (clovaai/generative-evaluation-prdc) exactly: a
sample is inside a ball when its distance is strictly less than the radius (``<``; NVlabs' original
precision/recall uses ``<=``, which differs only on ties, i.e. duplicated or discrete features). The radius
is the distance to the k-th nearest neighbour in the same set, the sample itself excluded.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg

from gantool.errors import GantoolError, UsageError

Array = NDArray[np.float64]

FID_EPS = 1e-6  # added to both covariances when their product is too singular for sqrtm, as pytorch-fid
MAX_IMAGINARY = 1e-3  # pytorch-fid's bound on the imaginary part of sqrtm's diagonal; above it is an error
_BLOCK = 1 << 22  # entries per block of pairwise distances: 32 MB of float64, whatever N


@dataclass(frozen=True)
class Scores:
    """All the distances between a real and a fake set of features, and the set sizes they hold at."""

    fid: float
    kid_mean: float
    kid_std: float
    precision: float
    recall: float
    density: float
    coverage: float
    n_a: int
    n_b: int

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def _features(x: ArrayLike, name: str, at_least: int = 2) -> Array:
    """``x`` as a float64 N×d array, refused (UsageError) unless it has ``at_least`` finite rows."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise UsageError(f"{name} features must be an N×d array, got shape {arr.shape}")
    if len(arr) < at_least:
        raise UsageError(f"{name} features need at least {at_least} samples, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise UsageError(f"{name} features contain NaN or infinity")
    return arr


def _pair(
    a: ArrayLike, b: ArrayLike, names: tuple[str, str], at_least: tuple[int, int] = (2, 2)
) -> tuple[Array, Array]:
    x, y = _features(a, names[0], at_least[0]), _features(b, names[1], at_least[1])
    if x.shape[1] != y.shape[1]:
        raise UsageError(f"feature sizes differ: {names[0]} has {x.shape[1]}, {names[1]} has {y.shape[1]}")
    return x, y


def feature_stats(x: ArrayLike) -> tuple[Array, Array]:
    """The mean and covariance (unbiased, N-1) of a set of features: what FID needs, and what a cache keeps."""
    arr = _features(x, "the")
    return arr.mean(axis=0), np.atleast_2d(np.cov(arr, rowvar=False))


def frechet_from_stats(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """FID from two sets' statistics: |mu1-mu2|² + Tr(S1 + S2 - 2 sqrtm(S1 S2)), in float64, as pytorch-fid.

    If sqrtm's result is not finite (a near-singular product) both covariances get ``FID_EPS``·I. A small
    imaginary part, rounding on a matrix that is not quite positive semi-definite, is dropped; a large one
    (> ``MAX_IMAGINARY`` on the diagonal) raises GantoolError, as pytorch-fid raises: the statistics are not covariances.
    """
    m1, m2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64)), np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = m1.shape[0] if m1.ndim == 1 else -1
    if d < 1 or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise UsageError(f"statistics do not match: means {m1.shape} {m2.shape}, covariances {s1.shape} {s2.shape}")
    if not all(np.isfinite(v).all() for v in (m1, m2, s1, s2)):
        raise UsageError("statistics contain NaN or infinity")
    covmean = _sqrtm(s1 @ s2)
    if covmean is None:  # singular (dead feature units give zero rows): regularise, as pytorch-fid does
        offset = np.eye(d) * FID_EPS
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=MAX_IMAGINARY):
            raise GantoolError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm(S1 S2)")
        covmean = covmean.real
    diff = m1 - m2
    # FID is a squared distance: a value a rounding error below 0 (identical sets) is 0.
    return max(0.0, float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)))


def _sqrtm(product: np.ndarray) -> np.ndarray | None:
    """scipy's sqrtm of ``product``, or None when scipy warns that it is singular or the result is not finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            root = linalg.sqrtm(product)  # no `disp`: deprecated in scipy 1.16; the plain call works everywhere
        except linalg.LinAlgWarning:
            return None
    return root if np.isfinite(root).all() else None


def frechet_distance(a: ArrayLike, b: ArrayLike) -> float:
    """FID between two sets of features. Biased upward at small N (see the module docstring): compare at equal N."""
    x, y = _pair(a, b, ("first", "second"))
    return frechet_from_stats(*feature_stats(x), *feature_stats(y))


def _mmd2_unbiased(x: Array, y: Array) -> float:
    """Unbiased MMD² of two equal-sized sets with k(x, y) = (x·y/d + 1)³, as torch-fidelity's ``mmd2``."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_distance(
    a: ArrayLike, b: ArrayLike, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and std (ddof 0) of the unbiased MMD² over ``subsets`` random subsets of each set.

    Each subset holds min(subset_size, len(a), len(b)) samples, drawn without replacement by
    ``np.random.default_rng(seed)``; torchmetrics refuses a subset_size above N, this clamps it instead.
    KID is unbiased, so it can be slightly negative for equal distributions; its std says how far from 0 is noise.
    """
    x, y = _pair(a, b, ("first", "second"))
    if subsets < 1 or subset_size < 2:
        raise UsageError(f"KID needs subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    m = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    mmds = np.empty(subsets)
    for s in range(subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        mmds[s] = _mmd2_unbiased(xs, ys)
    return float(mmds.mean()), float(mmds.std())


def _sq_distance_blocks(x: Array, y: Array) -> Iterator[tuple[int, Array]]:
    """(start, block): squared Euclidean distances from x's rows start... to every row of y, a block at a time.

    ||x||² + ||y||² - 2x·y clipped at 0, in float64; blocks of at most ``_BLOCK`` entries, so 10k × 10k
    distances never sit in memory at once. Squared distances compare against squared radii: same order.
    """
    yy = np.einsum("ij,ij->i", y, y)
    rows = max(1, _BLOCK // len(y))
    for start in range(0, len(x), rows):
        xs = x[start : start + rows]
        block = np.einsum("ij,ij->i", xs, xs)[:, None] + yy[None, :] - 2.0 * (xs @ y.T)
        yield start, np.maximum(block, 0.0, out=block)


def _knn_radii(x: Array, k: int) -> Array:
    """Squared distance from each row of x to its k-th nearest neighbour in x, the row itself excluded."""
    radii = np.empty(len(x))
    for start, block in _sq_distance_blocks(x, x):
        rows = np.arange(len(block))
        block[rows, start + rows] = np.inf  # itself: by index, so a duplicate elsewhere still counts
        radii[start : start + len(block)] = np.partition(block, k - 1, axis=1)[:, k - 1]
    return radii


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise UsageError(f"k must be a positive integer, got {k!r}")


def _manifolds(real: Array, fake: Array, k: int, with_recall: bool) -> tuple[float, float, float, float]:
    """(precision, recall, density, coverage) in one pass over real×fake distances; recall is NaN unless asked."""
    real_radii = _knn_radii(real, k)
    fake_radii = _knn_radii(fake, k) if with_recall else None
    balls_per_fake = np.zeros(len(fake), dtype=np.int64)  # how many real balls hold each fake sample
    covered = np.zeros(len(real), dtype=bool)  # real samples whose ball holds a fake one
    recalled = np.zeros(len(real), dtype=bool)  # real samples inside some fake ball
    for start, block in _sq_distance_blocks(real, fake):
        stop = start + len(block)
        inside = block < real_radii[start:stop, None]  # strict, as the prdc reference
        balls_per_fake += inside.sum(axis=0)
        covered[start:stop] = inside.any(axis=1)
        if fake_radii is not None:
            recalled[start:stop] = (block < fake_radii[None, :]).any(axis=1)
    precision = float(np.mean(balls_per_fake > 0))
    recall = float(recalled.mean()) if with_recall else float("nan")
    density = float(balls_per_fake.sum() / (k * len(fake)))
    return precision, recall, density, float(covered.mean())


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), in [0, 1].

    Precision: the share of fake samples inside the k-NN ball of at least one real sample (fidelity).
    Recall: the share of real samples inside the k-NN ball of at least one fake sample (diversity).
    Both sets need k+1 samples: each sample's ball reaches its k-th neighbour.
    """
    _check_k(k)
    x, y = _pair(real, fake, ("real", "fake"), (max(2, k + 1), max(2, k + 1)))
    precision, recall, _, _ = _manifolds(x, y, k, with_recall=True)
    return precision, recall


def density_coverage(real: ArrayLike, fake: ArrayLike, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020): k-NN balls around the real samples only, so outliers matter less.

    Density: (1/kM) Σ_j Σ_i 1[fake_j in B(real_i, NND_k(real_i))], about 1 when fake matches real (1 for
    identical sets, up to rounding on a boundary), above 1 when fakes crowd dense regions. Coverage: the share of real balls
    holding at least one fake sample, in [0, 1]. The real set needs k+1 samples.
    """
    _check_k(k)
    x, y = _pair(real, fake, ("real", "fake"), (max(2, k + 1), 2))
    _, _, density, coverage = _manifolds(x, y, k, with_recall=False)
    return density, coverage


def compare(real: ArrayLike, fake: ArrayLike, *, seed: int = 0, subset_size: int = 1000, subsets: int = 100) -> Scores:
    """Every metric between real and fake features: precision/recall with k=3, density/coverage with k=5."""
    x, y = _pair(real, fake, ("real", "fake"))
    # Subsets of at most half the smaller set: a subset as large as the set is the set itself every time,
    # and KID's spread over subsets (the ± a report shows) would then always be 0.
    subset_size = max(2, min(subset_size, min(len(x), len(y)) // 2))
    kid_mean, kid_std = kernel_distance(x, y, subsets=subsets, subset_size=subset_size, seed=seed)
    precision, recall = precision_recall(x, y, k=3)
    density, coverage = density_coverage(x, y, k=5)
    return Scores(
        fid=frechet_distance(x, y),
        kid_mean=kid_mean,
        kid_std=kid_std,
        precision=precision,
        recall=recall,
        density=density,
        coverage=coverage,
        n_a=len(x),
        n_b=len(y),
    )
