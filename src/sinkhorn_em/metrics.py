"""Metrics used by the experiments: matched parameter error, W2 between atoms, ARI/NMI."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog

__all__ = ["MatchedError", "ari", "matched_parameter_error", "nmi", "w2_squared"]


class MatchedError(NamedTuple):
    """``error`` after the optimal matching ``permutation`` (true k -> estimated permutation[k])."""

    error: float
    permutation: np.ndarray


def matched_parameter_error(means_true, means_est, covariances_true=None, covariances_est=None) -> MatchedError:
    """Parameter error minimised over relabelings of the estimated components.

    .. math:: \\min_\\pi \\sqrt{\\frac{1}{K} \\sum_k \\|\\mu_k - \\hat\\mu_{\\pi(k)}\\|^2
              + \\|\\Sigma_k - \\hat\\Sigma_{\\pi(k)}\\|_F^2}

    (the covariance term only when both covariance stacks ``(K, d, d)`` are given), solved
    exactly with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``).
    """
    mt = np.asarray(means_true, dtype=float)
    me = np.asarray(means_est, dtype=float)
    if mt.ndim == 1:
        mt, me = mt[:, None], me[:, None]
    if mt.shape != me.shape:
        raise ValueError(f"means_true {mt.shape} and means_est {me.shape} must have the same shape.")
    cost = ((mt[:, None, :] - me[None, :, :]) ** 2).sum(-1)
    if (covariances_true is None) != (covariances_est is None):
        raise ValueError("Give both covariances_true and covariances_est, or neither.")
    if covariances_true is not None:
        ct = np.asarray(covariances_true, dtype=float).reshape(len(mt), -1)
        ce = np.asarray(covariances_est, dtype=float).reshape(len(me), -1)
        cost = cost + ((ct[:, None, :] - ce[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return MatchedError(float(np.sqrt(cost[rows, cols].mean())), cols)


def w2_squared(weights_a, points_a, weights_b, points_b) -> float:
    """Squared 2-Wasserstein distance between ``sum_k a_k delta_{x_k}`` and ``sum_j b_j delta_{y_j}``.

    .. math:: W_2^2 = \\min_{T \\ge 0,\\ T 1 = a,\\ T^T 1 = b} \\sum_{kj} T_{kj} \\|x_k - y_j\\|^2

    solved exactly as a linear program (``scipy.optimize.linprog``, HiGHS): the atoms of
    two mixtures number in the tens, where an LP costs milliseconds.
    """
    xa = np.asarray(points_a, dtype=float)
    xb = np.asarray(points_b, dtype=float)
    xa = xa[:, None] if xa.ndim == 1 else xa
    xb = xb[:, None] if xb.ndim == 1 else xb
    a = np.asarray(weights_a, dtype=float)
    b = np.asarray(weights_b, dtype=float)
    if a.shape != (len(xa),) or b.shape != (len(xb),):
        raise ValueError(
            f"Need one weight per atom: got {a.shape[0] if a.ndim else a} weights for {len(xa)} atoms "
            f"and {b.shape[0] if b.ndim else b} for {len(xb)}."
        )
    if np.any(a < 0) or np.any(b < 0):
        raise ValueError("Weights must be non-negative.")
    if not np.isclose(a.sum(), b.sum()):
        raise ValueError(f"Both measures need the same mass, got {a.sum()} and {b.sum()}.")
    cost = ((xa[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
    n, m = cost.shape
    # Row k of the plan sums to a_k, column j to b_j; one column constraint is implied.
    rows = np.kron(np.eye(n), np.ones((1, m)))
    cols = np.kron(np.ones((1, n)), np.eye(m))[:-1]
    result = linprog(
        cost.ravel(),
        A_eq=np.vstack([rows, cols]),
        b_eq=np.concatenate([a, b[:-1] * (a.sum() / b.sum())]),
        bounds=(0, None),
        method="highs",
    )
    if not result.success:
        raise RuntimeError(f"The transport linear program failed: {result.message}")
    return float(max(result.fun, 0.0))


def ari(labels_true, labels_pred) -> float:
    """Adjusted Rand index (scikit-learn)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(labels_true, labels_pred))


def nmi(labels_true, labels_pred) -> float:
    """Normalised mutual information (scikit-learn, arithmetic mean normalisation)."""
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels_true, labels_pred))
