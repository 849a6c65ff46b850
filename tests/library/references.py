"""Independent references shared by the core tests: Gaussian costs from scipy's densities, the NLL from them and the EOT loss by POT."""

from __future__ import annotations

import numpy as np
import ot
from scipy.special import logsumexp
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
