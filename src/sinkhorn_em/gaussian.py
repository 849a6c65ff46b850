"""Gaussian building blocks: costs ``-log N(x; mu, Sigma)`` and weighted M-step estimates.

Public functions in the spirit of ``sklearn.mixture._gaussian_mixture``, computed by the
same code as the fit loop: the covariance types of :mod:`._covariance` (layouts as in
scikit-learn, see there) on the moment features of :mod:`._design`. For full and tied
covariances with small ``d`` (and diag/spherical in any ``d``) the costs of all components
come from one matrix product: with ``P_k = Sigma_k^{-1}``,

.. math:: (x - \\mu_k)^T P_k (x - \\mu_k) = \\langle \\mathrm{vech}(x x^T), w_k \\rangle
          - 2 x^T P_k \\mu_k + \\mu_k^T P_k \\mu_k ,

where ``w_k`` holds the entries of ``P_k`` (off-diagonal ones doubled). The features
depend on the data only: a :class:`MomentFeatures` computes them once for many calls. The
same features give all second moments of the M-step in one product. Data are centred
first, which keeps the cancellation in these expansions far below the scale of any
component's variance.
"""

from __future__ import annotations

import numpy as np

from . import _covariance
from ._covariance import get_covariance
from ._design import make_design

__all__ = [
    "COVARIANCE_TYPES",
    "MomentFeatures",
    "estimate_gaussian_parameters",
    "gaussian_cost",
    "log_gaussian_density",
    "n_covariance_parameters",
    "precision_cholesky",
]

#: Names of the covariance types (the classes are in ``_covariance.COVARIANCE_TYPES``).
COVARIANCE_TYPES = tuple(_covariance.COVARIANCE_TYPES)


class MomentFeatures:
    """Data-dependent quantities reused by every cost and M-step computed on the same data.

    Attributes
    ----------
    X : ndarray of shape (n, d)
        The centred data ``X_raw - shift``.
    shift : ndarray of shape (d,)
        The centre that was subtracted (the data mean by default).
    """

    def __init__(self, X, shift):
        self._data = X
        self.shift = shift
        self.X = X - shift
        self._designs = {}

    @classmethod
    def from_data(cls, X: np.ndarray, shift: np.ndarray | None = None) -> MomentFeatures:
        X = np.asarray(X, dtype=float)
        shift = X.mean(axis=0) if shift is None else np.asarray(shift, dtype=float)
        return cls(X, shift)

    def design(self, covariance_type: str):
        """The moment features of ``covariance_type`` (computed on first use, then kept)."""
        design = self._designs.get(covariance_type)
        if design is None:
            design = self._designs[covariance_type] = make_design(self._data, covariance_type, shift=self.shift)
        return design


def _design(X, covariance_type):
    # Centring on the data mean keeps the moment expansions exact to ~1e-15 relative to the
    # components' own scale even for data far from the origin.
    get_covariance(covariance_type)
    if isinstance(X, MomentFeatures):
        return X.design(covariance_type)
    return make_design(X, covariance_type)


def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Cholesky factors ``U`` of the precisions, ``Sigma^{-1} = U U^T`` (scikit-learn layout).

    Raises
    ------
    ValueError
        If a covariance is not positive definite (a component collapsed): the message
        suggests increasing ``reg_covar``.
    """
    return get_covariance(covariance_type).precision_cholesky(covariances)


def gaussian_cost(X, means, covariances, covariance_type: str = "full", *, prec_chol=None) -> np.ndarray:
    """Transport cost ``C[i, k] = -log N(x_i; mu_k, Sigma_k)``.

    Parameters
    ----------
    X : ndarray of shape (n, d) or MomentFeatures
        Data (a :class:`MomentFeatures` reuses precomputed products across calls).
    means : ndarray of shape (K, d)
    covariances : ndarray
        Layout given by ``covariance_type`` (see :mod:`._covariance`).
    covariance_type : {"full", "diag", "spherical", "tied"}
    prec_chol : ndarray, optional
        Precomputed :func:`precision_cholesky` of ``covariances``.

    Returns
    -------
    cost : ndarray of shape (n, K)
        ``0.5 * (d log(2 pi) + (x_i - mu_k)^T Sigma_k^{-1} (x_i - mu_k)) + 0.5 log det Sigma_k``.
    """
    design = _design(X, covariance_type)
    if prec_chol is None:
        prec_chol = precision_cholesky(covariances, covariance_type)
    means = np.asarray(means, dtype=float)[None]
    coefficients = design.coefficients_from_precision_cholesky(means, np.asarray(prec_chol, dtype=float)[None])
    return np.ascontiguousarray(design.cost(coefficients, slice(0, design.n))[0].T)


def log_gaussian_density(X, means, covariances, covariance_type: str = "full") -> np.ndarray:
    """``log N(x_i; mu_k, Sigma_k)`` as an ``(n, K)`` array (the negative of :func:`gaussian_cost`)."""
    return -gaussian_cost(X, means, covariances, covariance_type)


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
    resp : ndarray of shape (n, K)
        Non-negative weights: responsibilities, or a formed transport plan (the estimates
        do not depend on the overall scale, apart from the ``10 * machine eps`` added to
        ``nk``).
    reg_covar : float
        Added to the diagonal of every covariance.
    covariance_type : {"full", "diag", "spherical", "tied"}
    masses : ndarray of shape (K,), optional
        The column sums of ``resp`` when they are known already (a balanced transport
        plan's are its column marginal).

    Returns
    -------
    nk : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray (layout of ``covariance_type``)
    """
    design = _design(X, covariance_type)
    resp = np.asarray(resp, dtype=float)
    if resp.ndim != 2 or resp.shape[0] != design.n:
        raise ValueError(f"resp must have shape (n_samples, n_components) = ({design.n}, K), got {resp.shape}.")
    stats = design.statistics(resp.T[None], slice(0, design.n))
    masses = None if masses is None else np.asarray(masses, dtype=float)[None]
    nk, means, covariances = design.parameters(stats, reg_covar, masses=masses)
    return nk[0], means[0], covariances[0]


def n_covariance_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Number of free covariance parameters (for BIC)."""
    return get_covariance(covariance_type).n_parameters(n_components, n_features)
