r"""Starts of the osmFISH fits: known, perturbed or uniform weights, k-means++ initial clusters, weights by rank."""

from __future__ import annotations

import numpy as np

from sinkhorn_em_repro._checks import _check_choice
from sinkhorn_em_repro.experiments.osmfish.plan import WEIGHT_SETTINGS
from sinkhorn_em_repro.seeding import derive_seed
from sinkhorn_em_repro.starts import kmeanspp_centres, nearest_mean, weights_by_size

__all__ = [
    "class_proportions",
    "kmeanspp_init",
    "match_weights_by_rank",
    "perturb_weights",
    "seed_start",
    "setting_weights",
]


def class_proportions(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Proportions :math:`\\alpha_k = \\#\\{i: y_i = k\\} / n` of integer labels ``0..n_classes-1``."""
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(float)
    if counts.size != n_classes or (counts == 0).any():
        raise ValueError(f"labels must use every class 0..{n_classes - 1} at least once")
    return counts / counts.sum()


def perturb_weights(weights: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    r"""Mix known weights with Dirichlet noise: :math:`(1 - s)\,\alpha + s\,\eta`, :math:`\eta \sim \mathrm{Dir}(K\alpha)`.

    :math:`\mathbb E[w] = \alpha` and
    :math:`\mathrm{sd}(w_k) = s\sqrt{\alpha_k(1 - \alpha_k)/(K + 1)}`: the noise keeps the
    proportions on average and is relatively larger for rare classes.

    Parameters
    ----------
    weights : array of shape (K,)
        Positive weights summing to one (:math:`\alpha`).
    strength : float in [0, 1)
        :math:`s`; 0 returns :math:`\alpha`. Below 1 every entry stays at least
        :math:`(1 - s) \min_k \alpha_k > 0`.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (K,), positive, summing to one.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or (weights <= 0).any() or not np.isclose(weights.sum(), 1.0):
        raise ValueError("weights must be a 1-D vector of positive numbers summing to 1")
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"perturbation strength must lie in [0, 1), got {strength}; 1 would discard the weights")
    noise = rng.dirichlet(weights.size * weights)
    mixed = (1.0 - strength) * weights + strength * noise
    return mixed / mixed.sum()


def setting_weights(proportions: np.ndarray, setting: str, *, strength: float, rng: np.random.Generator) -> np.ndarray:
    """The weight vector of a weight setting ("true", "perturbed" or "uniform")."""
    _check_choice("weights", setting, WEIGHT_SETTINGS)
    if setting == "true":
        return np.asarray(proportions, dtype=float)
    if setting == "perturbed":
        return perturb_weights(proportions, strength, rng)
    return np.full(len(proportions), 1.0 / len(proportions))


def kmeanspp_init(
    X: np.ndarray, n_components: int, rng: np.random.Generator, *, reg_covar: float = 1e-6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Initial means, covariances and cluster sizes from k-means++ seeding.

    Centres are drawn by k-means++; each point joins its nearest centre, giving
    clusters of sizes :math:`n_k` with means :math:`m_k` and scatter :math:`S_k`.
    Covariances are shrunk towards the pooled within-cluster covariance
    :math:`S` with :math:`\nu = d + 1` pseudo-points,
    :math:`\Sigma_k = (n_k S_k + \nu S)/(n_k + \nu) + \text{reg\_covar}\, I`,
    so that a cluster with a handful of points does not start singular.

    Returns
    -------
    means : (K, d), covariances : (K, d, d), sizes : (K,) int
    """
    n, d = X.shape
    centres = kmeanspp_centres(X, n_components, rng)
    assignment = nearest_mean(X, centres)
    sizes = np.bincount(assignment, minlength=n_components)
    means = np.empty((n_components, d))
    scatter = np.zeros((n_components, d, d))
    for k in range(n_components):
        members = X[assignment == k]
        # k-means++ centres are data points, so a cluster is empty only with duplicate points.
        means[k] = members.mean(axis=0) if len(members) else centres[k]
        centred = members - means[k]
        scatter[k] = centred.T @ centred
    pooled = scatter.sum(axis=0) / n
    prior_points = d + 1.0
    covariances = (scatter + prior_points * pooled) / (sizes + prior_points)[:, None, None]
    covariances += reg_covar * np.eye(d)
    return means, covariances, sizes


def match_weights_by_rank(weights: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Permute ``weights`` so that their ranks follow the ranks of ``sizes``.

    The largest weight goes to the largest initial cluster (:func:`sinkhorn_em_repro.starts.weights_by_size`);
    of two clusters of equal size, the one with the higher index gets the larger weight.
    """
    return weights_by_size(weights, sizes, ties="higher_index_first")


def seed_start(features, target, feature_set, weights, seed_index, *, base_seed, strength, reg_covar):
    """Initial parameters and rank-matched weights shared by all methods of one seed.

    Returns
    -------
    truth, init_seed, means, covariances, weights, total_variation
        True labels of ``target``, the seed of the k-means++ start, its means and
        covariances, the weights of the setting matched to the initial clusters by rank,
        and the total-variation distance between the sorted weights and the sorted
        true proportions.
    """
    truth, names = features.labels(target)
    proportions = class_proportions(truth, len(names))
    init_seed = derive_seed(base_seed, "osmfish", "init", target, feature_set, seed_index)
    perturb_rng = np.random.default_rng(derive_seed(base_seed, "osmfish", "perturb", target, feature_set, seed_index))
    used = setting_weights(proportions, weights, strength=strength, rng=perturb_rng)
    means, covariances, sizes = kmeanspp_init(
        features.X, len(names), np.random.default_rng(init_seed), reg_covar=reg_covar
    )
    total_variation = 0.5 * np.abs(np.sort(used) - np.sort(proportions)).sum()
    return truth, init_seed, means, covariances, match_weights_by_rank(used, sizes), total_variation
