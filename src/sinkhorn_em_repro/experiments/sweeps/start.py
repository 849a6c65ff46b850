r"""Initial means of the sweeps' runs: the four schemes, and the optional pairing of means with weights by size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sinkhorn_em_repro.experiments.sweeps.setting import SweepSetting
from sinkhorn_em_repro.labels import INIT_SCHEMES
from sinkhorn_em_repro.seeding import derive_rng
from sinkhorn_em_repro.starts import cell_sizes, kmeanspp_centres, rank_order

__all__ = ["INIT_SCHEMES", "init_rng", "initial_means", "pair_means_with_weights"]


def initial_means(
    X: np.ndarray, n_components: int, scheme: str, rng: np.random.Generator, true_means: np.ndarray | None = None
) -> np.ndarray:
    """Initial means of one run (schemes described in the module docstring).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    n_components : int
    scheme : {"random_from_data", "k-means++", "uniform_box", "truth"}
    rng : numpy.random.Generator
        The run's own generator.
    true_means : ndarray of shape (K, d), optional
        Needed by the ``"truth"`` scheme.

    Returns
    -------
    means : ndarray of shape (K, d)
    """
    if scheme == "random_from_data":
        return X[rng.choice(X.shape[0], size=n_components, replace=False)].copy()
    if scheme == "k-means++":
        return kmeanspp_centres(X, n_components, rng)
    if scheme == "uniform_box":
        return rng.uniform(X.min(axis=0), X.max(axis=0), size=(n_components, X.shape[1]))
    if scheme == "truth":
        if true_means is None:
            raise ValueError("the 'truth' initialisation needs true_means.")
        return np.array(true_means, dtype=float)
    raise ValueError(f"unknown initialisation scheme {scheme!r}; use one of {INIT_SCHEMES}.")


def pair_means_with_weights(X: np.ndarray, means: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    r"""Reorder initial means so that larger nearest-mean cells start with larger weights.

    With known unequal weights, component ``k`` of a fit starts at ``means[k]`` with
    weight :math:`\alpha_k`; a start that puts a small weight on a big cluster lies in the
    basin of a spurious optimum even when every cluster holds one initial mean. This
    heuristic counts the points nearest to each initial mean and gives the ``j``-th largest
    weight to the mean with the ``j``-th largest count (ties by index).

    Returns
    -------
    ndarray of shape (K, d)
        ``means`` permuted: row ``k`` is the start of the component of weight ``weights[k]``.
    """
    means = np.asarray(means, dtype=float)
    paired = np.empty_like(means)
    paired[rank_order(np.asarray(weights, dtype=float))] = means[rank_order(cell_sizes(X, means))]
    return paired


def init_rng(
    seed: int, setting: SweepSetting, n_samples: int, dataset: int, scheme: str, init_index: int
) -> np.random.Generator:
    """The generator of one initialisation; its seed depends on what is computed, never on the job."""
    return derive_rng(
        seed,
        "sweeps",
        "init",
        setting.weights,
        setting.dim,
        setting.separation,
        int(n_samples),
        int(dataset),
        scheme,
        int(init_index),
    )
