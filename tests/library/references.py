"""Independent references shared by the core tests: Gaussian costs from scipy's densities, the NLL from
them, and the EOT loss by POT's log-domain Sinkhorn or by scipy's trust-region Newton on its semi-dual."""

from __future__ import annotations

import numpy as np
import ot
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax
from scipy.stats import multivariate_normal


def as_full(covariances, covariance_type, K, d):
    """Covariances as a ``(K, d, d)`` stack, for scipy."""
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (K, d, d))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.stack([c * np.eye(d) for c in covariances])


def scipy_cost(X, means, covariances, covariance_type):
    """``C[i, k] = -log N(x_i; mu_k, Sigma_k)`` from scipy's densities."""
    K, d = means.shape
    full = as_full(covariances, covariance_type, K, d)
    return -np.stack([multivariate_normal(means[k], full[k]).logpdf(X).reshape(-1) for k in range(K)], axis=1)


def scipy_nll(X, weights, means, covariances, covariance_type):
    """``-mean_i log sum_k alpha_k N(x_i; mu_k, Sigma_k)`` from scipy's densities."""
    return float(
        -logsumexp(np.log(weights)[None, :] - scipy_cost(X, means, covariances, covariance_type), axis=1).mean()
    )


def pot_eot_loss(X, weights, means, covariances, covariance_type):
    """EOT loss ``<P, C> + KL(P || a (x) alpha)`` with POT's log-domain Sinkhorn to 1e-13."""
    cost = scipy_cost(X, means, covariances, covariance_type)
    a = np.full(len(X), 1.0 / len(X))
    plan = ot.bregman.sinkhorn_log(a, weights, cost, 1.0, stopThr=1e-13, numItermax=200_000)
    positive = plan > 0
    kl = (plan[positive] * np.log(plan[positive] / np.outer(a, weights)[positive])).sum()
    return float((plan * cost).sum() + kl), plan


def scipy_eot_loss(X, weights, means, covariances, covariance_type, gtol=1e-13):
    """EOT loss of the Gaussian costs from scipy's densities by :func:`semidual_eot`."""
    return semidual_eot(scipy_cost(X, means, covariances, covariance_type), weights, gtol)


def semidual_eot(cost, weights, gtol=1e-13):
    r"""EOT loss ``min_P <P, C> + KL(P || a (x) alpha)`` (rows ``a = 1/n``, columns ``alpha``) by its semi-dual.

    With the row potential eliminated, the loss is the maximum over ``g`` in ``R^K`` of the concave

    .. math:: D(g) = \sum_k \alpha_k g_k - \sum_i a_i \log \sum_k \alpha_k e^{g_k - C_{ik}},

    whose gradient is ``alpha - P^T 1`` and Hessian ``-sum_i a_i (diag(p_i) - p_i p_i^T)``, with the plan
    ``P_ik = a_i p_ik``, ``p_i = softmax(log alpha + g - C_i)``. ``g_0 = 0`` removes the constant shift;
    scipy's ``trust-exact`` solves the remaining ``K - 1`` coordinates to a gradient norm ``gtol``.
    K-dimensional Newton steps reach machine precision in a few iterations where Sinkhorn's
    alternating steps need thousands on nearly decoupled columns (the reason this reference exists:
    POT to 1e-13 took 4-5 s per iterate on the descent property's problems).
    """
    n, K = cost.shape
    a = np.full(n, 1.0 / n)
    log_alpha = np.log(weights)

    def plan_of(free):
        return a[:, None] * softmax(log_alpha + np.concatenate([[0.0], free]) - cost, axis=1)

    def negative_dual(free):
        g = np.concatenate([[0.0], free])
        return -(weights @ g - a @ logsumexp(log_alpha + g - cost, axis=1))

    def negative_gradient(free):
        plan = plan_of(free)
        return -(weights - plan.sum(axis=0))[1:]

    def negative_hessian(free):
        plan = plan_of(free)
        rows = plan / a[:, None]
        hessian = np.diag(plan.sum(axis=0)) - (rows * a[:, None]).T @ rows
        return hessian[1:, 1:]

    solution = minimize(
        negative_dual,
        np.zeros(K - 1),
        jac=negative_gradient,
        hess=negative_hessian,
        method="trust-exact",
        options={"gtol": gtol, "maxiter": 1000},
    )
    # Near the optimum D changes by less than its rounding, so the trust region may stop with
    # "bad approximation" before gtol; plain Newton steps need no function values and finish it.
    free = solution.x
    for _ in range(20):
        gradient = negative_gradient(free)
        if np.abs(gradient).max() <= gtol:
            break
        free = free - np.linalg.solve(negative_hessian(free), gradient)
    plan = plan_of(free)
    if np.abs(plan.sum(axis=0) - weights).max() > 1e3 * gtol:
        raise RuntimeError(f"semi-dual reference did not converge: {solution.message}")
    return float(-negative_dual(free)), plan
