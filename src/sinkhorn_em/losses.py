"""Objectives of the paper family as functions of the mixture parameters.

With cost ``C[i, k] = -log N(x_i; mu_k, Sigma_k)``, row marginal ``a = 1/n``, known weights
``alpha`` and entropic weight ``eps``, every objective is a minimum of the free energy

.. math:: F(\\theta, P) = \\langle P, C \\rangle + \\varepsilon\\, \\mathrm{KL}(P \\,\\|\\, a \\otimes \\alpha)

over a set of couplings ``P``:

* **semi-relaxed** (rows sum to ``1/n``; Vayer & Lasalle 2025): the minimiser is
  ``P_ik = (1/n) alpha_k exp(-C_ik/eps) / Z_i`` (EM responsibilities over ``n``) and

  .. math:: \\min_P F = -\\frac{\\varepsilon}{n} \\sum_i \\log \\sum_k \\alpha_k e^{-C_{ik}/\\varepsilon},

  which for ``eps = 1`` is the negative log-likelihood (NLL);
* **balanced** (rows sum to ``1/n`` and columns to ``alpha``; Mena et al. 2020): the EOT loss
  ``L(theta)``, computed by :func:`sinkhorn_em.sinkhorn.sinkhorn_log`. Since it minimises
  over fewer couplings, ``L >= NLL``, with equality when the posterior column masses
  already equal ``alpha``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._validation import check_data, check_parameters
from .gaussian import gaussian_cost
from .sinkhorn import BALANCED_SOLVERS, solve_balanced

__all__ = [
    "BALANCED_SOLVERS",
    "balanced_value",
    "eot_loss",
    "free_energy",
    "nll",
    "semi_relaxed_plan",
    "semi_relaxed_value",
]


def semi_relaxed_plan(cost: np.ndarray, weights: np.ndarray, epsilon: float = 1.0):
    """Minimiser of ``F`` over couplings whose rows sum to ``1/n`` (the EM E-step).

    Returns
    -------
    log_resp : ndarray of shape (n, K)
        ``log`` of the tempered responsibilities ``alpha_k e^{-C_ik/eps} / Z_i`` (rows sum
        to 1); the plan is ``exp(log_resp) / n``.
    value : float
        ``min_P F = -eps * mean_i log Z_i``.
    """
    log_joint = np.log(weights)[None, :] - cost / epsilon
    log_norm = logsumexp(log_joint, axis=1)
    log_joint -= log_norm[:, None]
    return log_joint, float(-epsilon * log_norm.mean())


def semi_relaxed_value(cost: np.ndarray, weights: np.ndarray, epsilon: float = 1.0) -> float:
    """``min F`` over row-constrained couplings, ``-eps mean_i log sum_k alpha_k e^{-C_ik/eps}``."""
    return float(-epsilon * logsumexp(np.log(weights)[None, :] - cost / epsilon, axis=1).mean())


def free_energy(plan: np.ndarray, cost: np.ndarray, weights: np.ndarray, epsilon: float = 1.0) -> float:
    """``F(theta, P) = <P, C> + eps KL(P || (1/n) ⊗ alpha)`` for any non-negative ``plan``.

    The generalised KL ``sum P log(P / (a_i alpha_k)) - sum P + 1`` is used, so that the
    value is meaningful for a plan whose total mass is only approximately 1.
    """
    n = plan.shape[0]
    reference = np.log(weights)[None, :] - np.log(n)
    positive = plan > 0
    with np.errstate(divide="ignore"):
        log_plan = np.where(positive, np.log(np.where(positive, plan, 1.0)), 0.0)
    kl = float(np.sum(plan * (log_plan - reference)) - plan.sum() + 1.0)
    return float(np.sum(plan * cost) + epsilon * kl)


def balanced_value(
    cost,
    weights,
    epsilon: float = 1.0,
    *,
    tol: float = 1e-9,
    max_iter: int = 1000,
    g_init=None,
    warn=True,
    solver: str = "sinkhorn",
    hessian_init=None,
    n_jobs: int = 1,
):
    """``min F`` over couplings with rows ``1/n`` and columns ``alpha``; returns ``(value, SinkhornResult)``.

    The solve starts from ``g = log alpha`` (its first half-step is then the EM E-step)
    unless ``g_init`` is given. ``solver`` names the solver, as in
    :func:`~sinkhorn_em.sinkhorn.solve_balanced`: :func:`~sinkhorn_em.sinkhorn.sinkhorn_log`
    (``"sinkhorn"``) or :func:`~sinkhorn_em.sinkhorn.sinkhorn_newton` (``"newton"``);
    ``hessian_init`` (a previous result's ``hessian``) warm-starts the Newton solver's
    curvature as well; ``n_jobs`` threads run its passes (same result).
    """
    n = cost.shape[0]
    a = np.full(n, 1.0 / n)
    result = solve_balanced(
        a,
        weights,
        cost,
        epsilon,
        solver=solver,
        tol=tol,
        max_iter=max_iter,
        g_init=np.log(weights) if g_init is None else g_init,
        warn=warn,
        hessian_init=hessian_init,
        n_jobs=n_jobs,
    )
    # With log P = f + g - C/eps, <P, C> + eps <P, log P - log a - log b> collapses to the
    # potentials weighted by the plan's marginals: O(n + K) instead of a pass over P.
    # Both solvers end on a column half-step: the columns sum to the weights (to rounding).
    rows = result.row_marginal
    cols = weights
    value = epsilon * (rows @ (result.f - np.log(a)) + cols @ (result.g - np.log(weights)) - (rows.sum() - 1.0))
    return float(value), result


def nll(X, weights, means, covariances, covariance_type: str = "full", epsilon: float = 1.0) -> float:
    """Mean negative log-likelihood ``-(1/n) sum_i log sum_k alpha_k N(x_i; mu_k, Sigma_k)``.

    Computed as the semi-relaxed EOT value; for ``epsilon != 1`` this is the tempered
    value ``-eps mean_i log sum_k alpha_k N(x_i; mu_k, Sigma_k)^{1/eps}``.

    Parameters
    ----------
    X : array-like of shape (n, d)
    weights : array-like of shape (K,)
        Mixing weights (positive, summing to 1).
    means : array-like of shape (K, d)
    covariances : array-like
        Layout given by ``covariance_type``.
    covariance_type : {"full", "diag", "spherical", "tied"}
    epsilon : float, default=1.0
    """
    X = check_data(X)
    weights, means, covariances = check_parameters(weights, means, covariances, covariance_type, X.shape[1])
    if _check_epsilon(epsilon) == 1.0:
        # Block by block, one product and one pass of exponentials per block: no (n, K) array.
        from ._design import make_design
        from ._fit import nll_pass

        design = make_design(X, covariance_type)
        coefficients = design.coefficients(means[None], np.asarray(covariances, dtype=float)[None])
        return float(nll_pass(design, coefficients, np.log(weights)[None])[0])
    cost = gaussian_cost(X, means, covariances, covariance_type)
    return semi_relaxed_value(cost, weights, epsilon)


def eot_loss(
    X,
    weights,
    means,
    covariances,
    covariance_type: str = "full",
    epsilon: float = 1.0,
    *,
    tol: float = 1e-9,
    max_iter: int = 1000,
) -> float:
    """EOT loss ``L(theta) = min_{P 1 = 1/n, P^T 1 = alpha} <P, C> + eps KL(P || (1/n) ⊗ alpha)``.

    Parameters are as in :func:`nll`; ``tol`` and ``max_iter`` control the Sinkhorn solve
    (a :class:`~sinkhorn_em.sinkhorn.SinkhornConvergenceWarning` is emitted if it stops early).
    """
    X = check_data(X)
    weights, means, covariances = check_parameters(weights, means, covariances, covariance_type, X.shape[1])
    cost = gaussian_cost(X, means, covariances, covariance_type)
    value, _ = balanced_value(cost, weights, _check_epsilon(epsilon), tol=tol, max_iter=max_iter)
    return value


def _check_epsilon(epsilon) -> float:
    epsilon = float(epsilon)
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon}.")
    return epsilon
