"""Independent references shared by the core tests: Gaussian costs from scipy's densities."""

from __future__ import annotations

import numpy as np
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
