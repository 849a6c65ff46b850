"""Synthetic Gaussian-mixture generators used by the benchmarks and tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MixtureSample", "make_mixture", "means_with_separation", "symmetric_mixture"]


@dataclass(frozen=True)
class MixtureSample:
    """Data drawn from a known mixture, with its true parameters."""

    X: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


def symmetric_mixture(n: int, theta_star: float, alpha: float, rng: np.random.Generator) -> MixtureSample:
    """``alpha N(theta*, 1) + (1 - alpha) N(-theta*, 1)`` in one dimension.

    Component 0 has mean ``+theta*`` and weight ``alpha``; labels are drawn i.i.d.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}.")
    labels = (rng.random(n) >= alpha).astype(int)
    signs = np.where(labels == 0, 1.0, -1.0)
    X = (signs * theta_star + rng.standard_normal(n))[:, None]
    weights = np.array([alpha, 1.0 - alpha])
    means = np.array([[theta_star], [-theta_star]])
    return MixtureSample(X, labels, weights, means, np.ones((2, 1, 1)))


def means_with_separation(n_components: int, dim: int, separation: float, rng: np.random.Generator) -> np.ndarray:
    """``K`` means whose minimum pairwise distance is exactly ``separation``, packed compactly.

    Means are drawn one at a time uniformly in a cube of side
    ``L = 1.5 * separation * K^(1/d)`` and rejected when closer than ``separation`` to
    an accepted one (``L`` grows by 10% after repeated failures); the set is then centred
    and shrunk so that the closest pair is exactly ``separation`` apart. Unlike rescaling
    unconstrained random points, this keeps every mean within a few ``separation`` of the
    others, so the closest pair is not the only one that matters. In 1-D the means are
    evenly spaced.
    """
    if n_components < 2:
        return np.zeros((n_components, dim))
    if separation <= 0:
        raise ValueError(f"separation must be > 0, got {separation}.")
    if dim == 1:
        points = np.arange(n_components, dtype=float)[rng.permutation(n_components)][:, None] * separation
        return points - points.mean(axis=0)
    side = 1.5 * separation * n_components ** (1.0 / dim)
    points: list[np.ndarray] = []
    failures = 0
    while len(points) < n_components:
        candidate = rng.random(dim) * side
        if all(np.linalg.norm(candidate - p) >= separation for p in points):
            points.append(candidate)
            failures = 0
            continue
        failures += 1
        if failures > 200:
            side *= 1.1
            failures = 0
    means = np.array(points)
    means -= means.mean(axis=0)
    dist = np.sqrt(((means[:, None, :] - means[None, :, :]) ** 2).sum(-1))
    return means * (separation / dist[np.triu_indices(n_components, 1)].min())


def make_mixture(
    n: int,
    weights,
    dim: int,
    separation: float,
    rng: np.random.Generator,
    *,
    std: float = 1.0,
) -> MixtureSample:
    """Sample ``n`` points from a ``K``-component isotropic mixture with chosen separation.

    Parameters
    ----------
    n : int
        Number of samples.
    weights : array-like of shape (K,)
        Mixing weights (positive, summing to 1).
    dim : int
        Dimension ``d``.
    separation : float
        Minimum distance between means in units of the component standard deviation.
    rng : numpy.random.Generator
    std : float, default=1.0
        Component standard deviation (covariance ``std**2 I``).
    """
    weights = np.asarray(weights, dtype=float)
    if np.any(weights <= 0) or not np.isclose(weights.sum(), 1.0):
        raise ValueError("weights must be positive and sum to 1.")
    K = weights.size
    means = means_with_separation(K, dim, separation, rng) * std
    labels = rng.choice(K, size=n, p=weights)
    X = means[labels] + std * rng.standard_normal((n, dim))
    covariances = np.broadcast_to(np.eye(dim) * std**2, (K, dim, dim)).copy()
    return MixtureSample(X, labels, weights, means, covariances)
