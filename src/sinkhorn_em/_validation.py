"""Input checks with messages that name the problem and the fix."""

from __future__ import annotations

import numpy as np

from ._covariance import get_covariance

# Sums this close to 1 are rounding (float32 normalisation gives ~1e-7): renormalised silently.
_WEIGHT_SUM_ATOL = 1e-6


def check_data(X, *, min_samples: int = 1) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array or raise ``ValueError`` saying what is wrong."""
    X = np.asarray(X, dtype=float) if not isinstance(X, np.ndarray) or X.dtype != float else X
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (n_samples, n_features), got {X.ndim}-D with shape "
            f"{X.shape}; reshape 1-D data with X.reshape(-1, 1)."
        )
    if X.shape[0] < min_samples:
        raise ValueError(f"X has {X.shape[0]} samples; at least {min_samples} are needed.")
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"X contains NaN or inf (first at row {bad[0]}, column {bad[1]}); remove or impute "
            "those samples before fitting."
        )
    return X


def check_weights(weights, n_components: int) -> np.ndarray:
    """Validate mixing weights: length ``n_components``, finite, strictly positive, summing to 1.

    Weights whose sum is within ``1e-6`` of 1 (e.g. normalised in single precision) are
    renormalised; each other problem gets its own message and fix.
    """
    if weights is None:
        return np.full(n_components, 1.0 / n_components)
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.size != n_components:
        raise ValueError(
            f"weights must be a 1-D array of length n_components={n_components}, got shape {w.shape}; "
            "pass one weight per component, or set n_components to the number of weights."
        )
    if not np.all(np.isfinite(w)):
        bad = np.flatnonzero(~np.isfinite(w)).tolist()
        raise ValueError(
            f"weights contain NaN or inf at positions {bad}; pass finite weights (e.g. cluster proportions)."
        )
    if np.any(w < 0):
        bad = np.flatnonzero(w < 0).tolist()
        raise ValueError(f"weights must be positive, got negative values at positions {bad}: {w.tolist()}.")
    if np.any(w == 0):
        bad = np.flatnonzero(w == 0).tolist()
        raise ValueError(
            f"weights must be strictly positive, got zero at positions {bad}; a component with zero weight "
            "holds no data: remove it (and reduce n_components)."
        )
    total = w.sum()
    if abs(total - 1.0) > _WEIGHT_SUM_ATOL:
        raise ValueError(f"weights must sum to 1, got sum {total:.12g}; pass weights / weights.sum().")
    return w / total


def check_covariance_type(covariance_type: str) -> str:
    get_covariance(covariance_type)
    return covariance_type


def covariance_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    return get_covariance(covariance_type).shape(n_components, n_features)


def check_means(means, n_components: int, n_features: int) -> np.ndarray:
    means = np.asarray(means, dtype=float)
    if means.shape != (n_components, n_features):
        raise ValueError(
            f"means must have shape (n_components, n_features) = ({n_components}, {n_features}), got {means.shape}."
        )
    if not np.all(np.isfinite(means)):
        raise ValueError("means contain NaN or inf.")
    return means


def check_covariances(covariances, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """``covariances`` as a float array of the layout of ``covariance_type``, checked (see ``Covariance.check``)."""
    return get_covariance(covariance_type).check(covariances, n_components, n_features)


def check_parameters(weights, means, covariances, covariance_type: str, n_features: int):
    """Validate a full parameter set ``(weights, means, covariances)``."""
    check_covariance_type(covariance_type)
    means = np.asarray(means, dtype=float)
    if means.ndim != 2:
        raise ValueError(f"means must be 2-D (n_components, n_features), got shape {means.shape}.")
    K = means.shape[0]
    return (
        check_weights(weights, K),
        check_means(means, K, n_features),
        check_covariances(covariances, covariance_type, K, n_features),
    )
