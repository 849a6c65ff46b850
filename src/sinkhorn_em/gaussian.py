"""Gaussian building blocks: costs ``-log N(x; mu, Sigma)`` and weighted M-step estimates.

Small pure functions in the spirit of ``sklearn.mixture._gaussian_mixture``. Covariance
layouts follow scikit-learn:

=============  ==================  ==========================================
type           ``covariances``     meaning
=============  ==================  ==========================================
``full``       ``(K, d, d)``       one full covariance per component
``diag``       ``(K, d)``          one diagonal per component
``spherical``  ``(K,)``            one variance per component
``tied``       ``(d, d)``          one full covariance shared by all components
=============  ==================  ==========================================

For full and tied covariances with small ``d`` the Mahalanobis distances of all
components come from one matrix product: with ``P_k = Sigma_k^{-1}``,

.. math:: (x - \\mu_k)^T P_k (x - \\mu_k) = \\langle \\mathrm{vech}(x x^T), w_k \\rangle
          - 2 x^T P_k \\mu_k + \\mu_k^T P_k \\mu_k ,

where ``w_k`` holds the entries of ``P_k`` (off-diagonal ones doubled). The features
``vech(x x^T)`` depend on the data only and are computed once per fit
(:class:`MomentFeatures`). The same features give all second moments of the M-step in
one product. Data are centred first, which keeps the cancellation in these expansions
far below the scale of any component's variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _reductions
from .sinkhorn import PlanFactors

__all__ = [
    "COVARIANCE_TYPES",
    "MomentFeatures",
    "estimate_gaussian_parameters",
    "gaussian_cost",
    "log_gaussian_density",
    "n_covariance_parameters",
    "precision_cholesky",
]

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
_LOG_2PI = np.log(2.0 * np.pi)
# Above this dimension the d(d+1)/2 moment features cost more than a loop over components.
_MAX_DIM_FOR_MOMENTS = 16


def _check_covariance_type(covariance_type: str) -> None:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}.")


@dataclass(frozen=True)
class MomentFeatures:
    """Data-dependent quantities reused by every E- and M-step of a fit.

    Attributes
    ----------
    X : ndarray of shape (n, d)
        The centred data ``X_raw - shift``.
    shift : ndarray of shape (d,)
        The centre that was subtracted (the data mean).
    quadratic : ndarray of shape (n, d(d+1)/2) or None
        ``vech(x x^T)`` per sample (upper triangle, row-major), or ``None`` when ``d``
        is too large for the expansion to pay off.
    """

    X: np.ndarray
    shift: np.ndarray
    quadratic: np.ndarray | None

    @classmethod
    def from_data(cls, X: np.ndarray, shift: np.ndarray | None = None) -> MomentFeatures:
        X = np.asarray(X, dtype=float)
        shift = X.mean(axis=0) if shift is None else np.asarray(shift, dtype=float)
        Xc = X - shift
        d = X.shape[1]
        quadratic = None
        if d <= _MAX_DIM_FOR_MOMENTS:
            rows, cols = np.triu_indices(d)
            quadratic = Xc[:, rows] * Xc[:, cols]
        return cls(Xc, shift, quadratic)


def _triu_weights(matrices: np.ndarray) -> np.ndarray:
    """Coefficients of ``vech(x x^T)`` in ``x^T M x`` for a stack ``(K, d, d)`` -> ``(K, d(d+1)/2)``."""
    d = matrices.shape[-1]
    rows, cols = np.triu_indices(d)
    w = matrices[:, rows, cols].copy()
    w[:, rows != cols] *= 2.0
    return w


def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Cholesky factors ``U`` of the precisions, ``Sigma^{-1} = U U^T`` (scikit-learn layout).

    Raises
    ------
    ValueError
        If a covariance is not positive definite (a component collapsed): the message
        suggests increasing ``reg_covar``.
    """
    _check_covariance_type(covariance_type)
    message = (
        "A covariance matrix is not positive definite (a component has collapsed onto "
        "too few points). Increase reg_covar or reduce n_components."
    )
    if covariance_type in ("full", "tied"):
        stack = np.asarray(covariances, dtype=float)
        stack = stack[None] if covariance_type == "tied" else stack
        if not np.all(np.isfinite(stack)):
            raise ValueError(message)
        # One batched LAPACK call for the whole stack (a loop over components costs ~10 us
        # each in Python overhead alone, which dominates small fits).
        try:
            chol = np.linalg.cholesky(stack)
        except np.linalg.LinAlgError:
            raise ValueError(message) from None
        # The inverse of a lower-triangular factor is lower triangular: keep it exactly so.
        out = np.triu(np.swapaxes(np.linalg.inv(chol), -1, -2))
        if not np.all(np.isfinite(out)):
            raise ValueError(message)
        return out[0] if covariance_type == "tied" else out
    if np.any(covariances <= 0.0) or not np.all(np.isfinite(covariances)):
        raise ValueError(message)
    return 1.0 / np.sqrt(covariances)


def _log_det_precision_cholesky(prec_chol: np.ndarray, covariance_type: str, d: int):
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(prec_chol)).sum()
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return d * np.log(prec_chol)


def _mahalanobis(features: MomentFeatures, means: np.ndarray, prec_chol: np.ndarray, covariance_type: str):
    """Squared Mahalanobis distances ``(n, K)`` of the centred data to centred means."""
    X = features.X
    n, d = X.shape
    if covariance_type in ("full", "tied"):
        stack = prec_chol[None] if covariance_type == "tied" else prec_chol
        if features.quadratic is not None:
            precisions = stack @ np.swapaxes(stack, 1, 2)
            if covariance_type == "tied":
                precisions = np.broadcast_to(precisions, (means.shape[0], d, d))
            p_mu = np.einsum("kab,kb->ka", precisions, means)  # (K, d)
            maha = features.quadratic @ _triu_weights(precisions).T
            maha -= 2.0 * (X @ p_mu.T)
            maha += np.einsum("ka,ka->k", p_mu, means)
            # The expansion may round a distance of ~0 to a tiny negative number.
            np.maximum(maha, 0.0, out=maha)
            return maha
        maha = np.empty((n, means.shape[0]))
        for k, mu in enumerate(means):
            chol = stack[0] if covariance_type == "tied" else stack[k]
            y = X @ chol - mu @ chol
            maha[:, k] = np.einsum("ij,ij->i", y, y)
        return maha
    if covariance_type == "diag":
        precisions = prec_chol**2
        maha = (X**2) @ precisions.T - 2.0 * (X @ (means * precisions).T)
        maha += np.sum(means**2 * precisions, axis=1)
    else:  # spherical
        precisions = prec_chol**2
        maha = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ means.T)
        maha += np.einsum("ij,ij->i", means, means)[None, :]
        maha *= precisions[None, :]
    np.maximum(maha, 0.0, out=maha)
    return maha


def _as_features(X) -> MomentFeatures:
    # Centring on the data mean keeps the moment expansions exact to ~1e-15 relative to the
    # components' own scale even for data far from the origin.
    return X if isinstance(X, MomentFeatures) else MomentFeatures.from_data(X)


def gaussian_cost(X, means, covariances, covariance_type: str = "full", *, prec_chol=None) -> np.ndarray:
    """Transport cost ``C[i, k] = -log N(x_i; mu_k, Sigma_k)``.

    Parameters
    ----------
    X : ndarray of shape (n, d) or MomentFeatures
        Data (a :class:`MomentFeatures` reuses precomputed products across calls).
    means : ndarray of shape (K, d)
    covariances : ndarray
        Layout given by ``covariance_type`` (see module docstring).
    covariance_type : {"full", "diag", "spherical", "tied"}
    prec_chol : ndarray, optional
        Precomputed :func:`precision_cholesky` of ``covariances``.

    Returns
    -------
    cost : ndarray of shape (n, K)
        ``0.5 * (d log(2 pi) + (x_i - mu_k)^T Sigma_k^{-1} (x_i - mu_k)) + 0.5 log det Sigma_k``.
    """
    features = _as_features(X)
    _check_covariance_type(covariance_type)
    means = np.asarray(means, dtype=float) - features.shift
    if prec_chol is None:
        prec_chol = precision_cholesky(np.asarray(covariances, dtype=float), covariance_type)
    d = features.X.shape[1]
    maha = _mahalanobis(features, means, prec_chol, covariance_type)
    log_det = _log_det_precision_cholesky(prec_chol, covariance_type, d)
    maha += d * _LOG_2PI
    maha *= 0.5
    maha -= log_det
    return maha


def log_gaussian_density(X, means, covariances, covariance_type: str = "full") -> np.ndarray:
    """``log N(x_i; mu_k, Sigma_k)`` as an ``(n, K)`` array (the negative of :func:`gaussian_cost`)."""
    return -gaussian_cost(X, means, covariances, covariance_type)


class _FormedWeights:
    """An ``(n, K)`` weight array behind the product interface of :class:`PlanFactors`."""

    def __init__(self, resp):
        self.resp = resp

    def transpose_matmul(self, right):
        return self.resp.T @ right

    def row_sums(self):
        return _reductions.row_sums(self.resp)

    def column_sums(self):
        return _reductions.column_sums(self.resp)

    def column(self, k):
        return self.resp[:, k]


def estimate_gaussian_parameters(
    X, resp: np.ndarray, reg_covar: float, covariance_type: str = "full", masses: np.ndarray | None = None
):
    """Weighted M-step: masses, means and covariances from soft assignments.

    .. math:: n_k = \\sum_i r_{ik},\\quad \\mu_k = \\frac{1}{n_k}\\sum_i r_{ik} x_i,\\quad
              \\Sigma_k = \\frac{1}{n_k}\\sum_i r_{ik}(x_i - \\mu_k)(x_i - \\mu_k)^T + \\lambda I

    with ``lambda = reg_covar``; ``tied`` pools the scatter of all components and divides by
    ``sum_k n_k``; ``diag``/``spherical`` keep the diagonal / its mean.

    Parameters
    ----------
    X : ndarray of shape (n, d) or MomentFeatures
    resp : ndarray of shape (n, K) or PlanFactors
        Non-negative weights: responsibilities, or a transport plan, formed or as
        :class:`~sinkhorn_em.sinkhorn.PlanFactors` (the estimates do not depend on the
        overall scale, apart from the ``10 * machine eps`` added to ``nk``).
    reg_covar : float
        Added to the diagonal of every covariance.
    covariance_type : {"full", "diag", "spherical", "tied"}
    masses : ndarray of shape (K,), optional
        The column sums of ``resp`` when they are known already (a balanced transport
        plan's are its column marginal), saving a pass over ``resp``.

    Returns
    -------
    nk : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray (layout of ``covariance_type``)
    """
    features = _as_features(X)
    _check_covariance_type(covariance_type)
    Xc = features.X
    n, d = Xc.shape
    weights = resp if isinstance(resp, PlanFactors) else _FormedWeights(resp)
    weighted_sums = weights.transpose_matmul
    masses = weights.column_sums() if masses is None else np.asarray(masses, dtype=float)
    # Keeps an empty component finite; same guard as scikit-learn.
    nk = masses + 10.0 * np.finfo(resp.dtype).eps
    means_c = weighted_sums(Xc) / nk[:, None]
    if covariance_type == "full":
        if features.quadratic is not None:
            second = weighted_sums(features.quadratic) / nk[:, None]
            covariances = np.empty((len(nk), d, d))
            rows, cols = np.triu_indices(d)
            covariances[:, rows, cols] = second
            covariances[:, cols, rows] = second
            covariances -= means_c[:, :, None] * means_c[:, None, :]
        else:
            covariances = np.empty((len(nk), d, d))
            for k in range(len(nk)):
                diff = Xc - means_c[k]
                covariances[k] = (weights.column(k) * diff.T) @ diff / nk[k]
        covariances[:, np.arange(d), np.arange(d)] += reg_covar
    elif covariance_type == "tied":
        # Row masses are 1 for responsibilities but only close to 1 for n * plan.
        avg_x2 = (Xc.T * weights.row_sums()) @ Xc
        avg_means2 = (nk * means_c.T) @ means_c
        covariances = (avg_x2 - avg_means2) / nk.sum()
        covariances.flat[:: d + 1] += reg_covar
    else:
        avg_x2 = weighted_sums(Xc * Xc) / nk[:, None]
        diag = avg_x2 - means_c**2 + reg_covar
        covariances = diag if covariance_type == "diag" else diag.mean(axis=1)
    return nk, means_c + features.shift, covariances


def n_covariance_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Number of free covariance parameters (for BIC)."""
    _check_covariance_type(covariance_type)
    K, d = n_components, n_features
    return {
        "full": K * d * (d + 1) // 2,
        "diag": K * d,
        "spherical": K,
        "tied": d * (d + 1) // 2,
    }[covariance_type]
