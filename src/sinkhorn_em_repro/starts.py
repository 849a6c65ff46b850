r"""Pieces shared by the initialisations of the families: nearest-mean cells and rank matching.

Known weights come as a multiset: nothing says which component gets which weight. The
families give the :math:`j`-th largest weight to the :math:`j`-th largest cell of the
initial means (the points nearest to each mean); among all one-to-one assignments this
one minimises :math:`\sum_k |n_k / n - w_{\pi(k)}|^p` for every :math:`p \ge 1`
(monotone rearrangement).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cell_sizes", "kmeanspp_centres", "nearest_mean", "rank_order", "weights_by_size"]

TIES = ("lower_index_first", "higher_index_first")


def nearest_mean(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    r"""Index of the nearest mean of every point: :math:`\arg\min_k \|x_i - m_k\|^2`.

    The squared distances are expanded as :math:`\|x\|^2 - 2 x^\top m + \|m\|^2`, one
    matrix product instead of an ``(n, K, d)`` array of differences.
    """
    X = np.asarray(X, dtype=float)
    means = np.asarray(means, dtype=float)
    squared_distance = (X**2).sum(1)[:, None] - 2.0 * X @ means.T + (means**2).sum(1)[None, :]
    return np.argmin(squared_distance, axis=1)


def cell_sizes(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Number of points whose nearest mean is each of ``means`` (:func:`nearest_mean`)."""
    return np.bincount(nearest_mean(X, means), minlength=len(means))


def rank_order(scores, ties: str = "lower_index_first") -> np.ndarray:
    """Indices of ``scores`` from the largest to the smallest (a stable sort).

    Equal scores keep their index order (``ties="lower_index_first"``) or the reverse
    (``"higher_index_first"``), so the order is deterministic either way.
    """
    scores = np.asarray(scores)
    if ties == "lower_index_first":
        return np.argsort(-scores, kind="stable")
    if ties == "higher_index_first":
        return np.argsort(scores, kind="stable")[::-1]
    raise ValueError(f"ties must be one of {TIES}, got {ties!r}.")


def weights_by_size(weights, sizes, ties: str = "lower_index_first") -> np.ndarray:
    """``weights`` permuted so that the largest goes to the largest of ``sizes``, and so on.

    ``ties`` says which of several equal sizes gets the larger weight (:func:`rank_order`).
    """
    weights = np.asarray(weights, dtype=float)
    sizes = np.asarray(sizes)
    if weights.shape != sizes.shape:
        raise ValueError(f"weights {weights.shape} and cluster sizes {sizes.shape} must have the same shape")
    matched = np.empty_like(weights)
    matched[rank_order(sizes, ties)] = weights[rank_order(weights)]
    return matched


def kmeanspp_centres(X: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii; :func:`sklearn.cluster.kmeans_plusplus`) from ``rng``."""
    from sklearn.cluster import kmeans_plusplus

    centres, _ = kmeans_plusplus(X, n_components, random_state=int(rng.integers(2**31 - 1)))
    return centres
