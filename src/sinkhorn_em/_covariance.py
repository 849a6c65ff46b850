"""Covariance types: one class per type holds everything that depends on the covariance layout.

Layouts follow scikit-learn (for ``K`` components in ``d`` dimensions, with any leading
axes over a stack of parameter sets):

=============  ==================  ==========================================
type           ``covariances``     meaning
=============  ==================  ==========================================
``full``       ``(K, d, d)``       one full covariance per component
``diag``       ``(K, d)``          one diagonal per component
``spherical``  ``(K,)``            one variance per component
``tied``       ``(d, d)``          one full covariance shared by all components
=============  ==================  ==========================================

Each class gives, for its layout:

* the checks of a given covariance array (:meth:`Covariance.check`), its shape and its
  number of free parameters (BIC);
* the Cholesky factors ``U`` of the precisions, ``Sigma^{-1} = U U^T``, their
  ``log det U`` and the precisions themselves;
* the cost's moment features: with ``P_k = Sigma_k^{-1}``,

  .. math:: C_{ik} = -\\log N(x_i; \\mu_k, \\Sigma_k)
            = \\tfrac12 \\langle q(x_i), w_k \\rangle - x_i^T P_k \\mu_k
              + \\tfrac12 \\mu_k^T P_k \\mu_k + \\tfrac d2 \\log 2\\pi - \\log\\det U_k,

  where the second-moment features ``q(x)`` are ``vech(x x^T)`` (full, tied; ``w_k`` holds
  the entries of ``P_k`` with off-diagonal ones doubled) or ``x * x`` (diag, spherical;
  ``w_k`` is the diagonal of ``P_k``): :meth:`Covariance.second_moment_features` and
  :meth:`Covariance.quadratic_coefficients`;
* the M-step covariances from the weighted sums of those features,
  ``Sigma_k = (1/n_k) sum_i w_ik x_i x_i^T - mu_k mu_k^T + lambda I`` (``tied`` pools the
  scatter of all components and divides by ``sum_k n_k``; ``diag``/``spherical`` keep the
  diagonal / its mean): :meth:`Covariance.covariances_from_moments`;
* sampling a component (:meth:`Covariance.sample_component`).

Adding a covariance type is one class here and one entry of :data:`COVARIANCE_TYPES`;
:mod:`._design` (the fit's data), :mod:`.gaussian` (the public functions), validation and
the estimator only call these methods.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["COVARIANCE_TYPES", "Covariance", "Diag", "Full", "Spherical", "Tied", "get_covariance"]

# Above this dimension the d(d+1)/2 moment features of a full matrix cost more than a loop
# over components (see _design._LoopDesign).
MAX_DIM_FOR_MOMENTS = 16
_NOT_POSITIVE_DEFINITE = (
    "A covariance matrix is not positive definite (a component has collapsed onto "
    "too few points). Increase reg_covar or reduce n_components."
)


@lru_cache(maxsize=64)
def _triu(d):
    """``np.triu_indices(d)`` (row-major upper triangle), cached: the M-step of a small fit needs it each iteration."""
    rows, cols = np.triu_indices(d)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


class Covariance:
    """What a covariance type must provide; one instance per type in :data:`COVARIANCE_TYPES`."""

    name: str
    #: Whether every component has its own covariance (False: one shared by all, as ``tied``).
    per_component = True

    def __repr__(self):
        return f"{type(self).__name__}()"

    # ------------------------------------------------------------------ layout and checks
    def shape(self, n_components: int, n_features: int) -> tuple:
        """Shape of one parameter set's covariances."""
        raise NotImplementedError

    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters (for BIC)."""
        raise NotImplementedError

    def check(self, covariances, n_components: int, n_features: int) -> np.ndarray:
        """``covariances`` as a float array of the layout, or ``ValueError`` naming what is wrong."""
        covariances = np.asarray(covariances, dtype=float)
        expected = self.shape(n_components, n_features)
        if covariances.shape != expected:
            raise ValueError(
                f"covariances for covariance_type={self.name!r} must have shape {expected}, got {covariances.shape}."
            )
        if not np.all(np.isfinite(covariances)):
            raise ValueError("covariances contain NaN or inf.")
        self._check_values(covariances)
        return covariances

    def _check_values(self, covariances):
        raise NotImplementedError

    def reorder(self, covariances, order):
        """The covariances of the components ``order`` (a permutation)."""
        return covariances[order]

    # ------------------------------------------------------------------ precisions
    def precision_cholesky(self, covariances) -> np.ndarray:
        """Cholesky factors ``U`` of the precisions, ``Sigma^{-1} = U U^T`` (scikit-learn layout).

        Accepts any leading axes (a stack of parameter sets).

        Raises
        ------
        ValueError
            If a covariance is not positive definite (a component collapsed): the message
            suggests increasing ``reg_covar``.
        """
        raise NotImplementedError

    def precisions(self, prec_chol) -> np.ndarray:
        """``Sigma^{-1} = U U^T`` of one parameter set (scikit-learn's ``precisions_``)."""
        raise NotImplementedError

    def log_det(self, prec_chol, n_components: int, n_features: int) -> np.ndarray:
        """``log det U`` per parameter set and component, ``(S, K)``, for a stack ``prec_chol``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ moment features
    def uses_moment_features(self, n_features: int) -> bool:
        """Whether the cost is computed as a product with moment features in ``n_features`` dimensions."""
        return True

    def second_moment_features(self, Xc) -> np.ndarray:
        """Second-moment features ``q(x)`` of the centred data ``Xc`` ``(d, n)``: ``(m, n)``."""
        raise NotImplementedError

    def quadratic_coefficients(self, prec_chol, means_c):
        """``(w / 2, P mu)`` for a stack: the coefficients of ``q(x)`` and of ``-x`` in the cost.

        ``prec_chol`` is a stack of :meth:`precision_cholesky`, ``means_c`` ``(S, K, d)``
        the centred means; returns arrays ``(S, K, m)`` and ``(S, K, d)``.
        """
        raise NotImplementedError

    def covariances_from_moments(self, second, nk, means_c, reg_covar) -> np.ndarray:
        """M-step covariances from ``second = sum_i w_ik q(x_i)`` ``(S, K, m)``, masses and centred means."""
        raise NotImplementedError

    # ------------------------------------------------------------------ sampling
    def sample_component(self, rng, mean, covariances, k: int, count: int) -> np.ndarray:
        """``count`` draws from component ``k`` (``mean`` ``(d,)``), as scikit-learn's ``GaussianMixture.sample``."""
        raise NotImplementedError


class _Matrix(Covariance):
    """Full ``d x d`` matrices (full, tied): features ``vech(x x^T)``, a loop over components above d = 16."""

    def _check_values(self, covariances):
        stack = covariances.reshape((-1,) + covariances.shape[-2:])
        if not np.allclose(stack, np.swapaxes(stack, 1, 2), rtol=1e-8, atol=1e-12):
            raise ValueError("covariances must be symmetric matrices.")
        if np.any(np.linalg.eigvalsh(stack)[:, 0] <= 0):
            raise ValueError("covariances must be positive definite.")

    def precision_cholesky(self, covariances):
        covariances = np.asarray(covariances, dtype=float)
        shape = covariances.shape
        stack = covariances.reshape((-1,) + shape[-2:])
        if not np.all(np.isfinite(stack)):
            raise ValueError(_NOT_POSITIVE_DEFINITE)
        # One batched LAPACK call for the whole stack (a loop over components costs ~10 us
        # each in Python overhead alone, which dominates small fits).
        try:
            chol = np.linalg.cholesky(stack)
        except np.linalg.LinAlgError:
            raise ValueError(_NOT_POSITIVE_DEFINITE) from None
        # The inverse of a lower-triangular factor is lower triangular: keep it exactly so.
        out = np.triu(np.swapaxes(np.linalg.inv(chol), -1, -2))
        if not np.all(np.isfinite(out)):
            raise ValueError(_NOT_POSITIVE_DEFINITE)
        return out.reshape(shape)

    def uses_moment_features(self, n_features):
        return n_features <= MAX_DIM_FOR_MOMENTS

    def second_moment_features(self, Xc):
        rows, cols = _triu(Xc.shape[0])
        return Xc[rows] * Xc[cols]

    def _stack_precisions(self, prec_chol, K):
        """``P = U U^T`` of a stack, one per start and component ``(S, K, d, d)``."""
        raise NotImplementedError

    def quadratic_coefficients(self, prec_chol, means_c):
        rows, cols = _triu(means_c.shape[-1])
        precisions = self._stack_precisions(prec_chol, means_c.shape[1])
        second = precisions[..., rows, cols]
        second = np.where(rows != cols, second, 0.5 * second)
        return second, np.einsum("skab,skb->ska", precisions, means_c)

    def covariances_from_moments(self, second, nk, means_c, reg_covar):
        d = means_c.shape[-1]
        rows, cols = _triu(d)
        scatter = np.empty(second.shape[:-1] + (d, d))
        scatter[..., rows, cols] = second
        scatter[..., cols, rows] = second
        return self.covariances_from_scatter(scatter, nk, means_c, reg_covar)

    # The loop over components above MAX_DIM_FOR_MOMENTS (_design._LoopDesign).
    def component_factors(self, prec_chol, K):
        """``U`` per start and component ``(S, K, d, d)`` from a stack of :meth:`precision_cholesky`."""
        raise NotImplementedError

    def covariances_from_scatter(self, scatter, nk, means_c, reg_covar):
        """M-step covariances from ``scatter = sum_i w_ik x_i x_i^T`` ``(S, K, d, d)``."""
        raise NotImplementedError


class Full(_Matrix):
    """One full covariance per component, ``(K, d, d)``."""

    name = "full"

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def precisions(self, prec_chol):
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)

    def log_det(self, prec_chol, n_components, n_features):
        return np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(axis=-1)

    def _stack_precisions(self, prec_chol, K):
        return prec_chol @ np.swapaxes(prec_chol, -1, -2)

    def component_factors(self, prec_chol, K):
        return prec_chol

    def covariances_from_scatter(self, scatter, nk, means_c, reg_covar):
        d = means_c.shape[-1]
        covariances = scatter / nk[..., None, None] - means_c[..., :, None] * means_c[..., None, :]
        covariances[..., np.arange(d), np.arange(d)] += reg_covar
        return covariances

    def sample_component(self, rng, mean, covariances, k, count):
        return rng.multivariate_normal(mean, covariances[k], count)


class Tied(_Matrix):
    """One full covariance shared by all components, ``(d, d)``."""

    name = "tied"
    per_component = False

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def reorder(self, covariances, order):
        return covariances

    def precisions(self, prec_chol):
        return prec_chol @ prec_chol.T

    def log_det(self, prec_chol, n_components, n_features):
        return np.repeat(np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(axis=-1)[:, None], n_components, axis=1)

    def _stack_precisions(self, prec_chol, K):
        precisions = prec_chol @ np.swapaxes(prec_chol, -1, -2)
        return np.broadcast_to(precisions[:, None], (precisions.shape[0], K) + precisions.shape[1:])

    def component_factors(self, prec_chol, K):
        return np.broadcast_to(prec_chol[:, None], (prec_chol.shape[0], K) + prec_chol.shape[1:])

    def covariances_from_scatter(self, scatter, nk, means_c, reg_covar):
        d = means_c.shape[-1]
        covariances = scatter.sum(axis=1) - np.einsum("sk,ska,skb->sab", nk, means_c, means_c)
        covariances /= nk.sum(axis=1)[:, None, None]
        covariances[:, np.arange(d), np.arange(d)] += reg_covar
        return covariances

    def sample_component(self, rng, mean, covariances, k, count):
        return rng.multivariate_normal(mean, covariances, count)


class _Diagonal(Covariance):
    """Diagonal covariances (diag, spherical): features ``x * x`` in any dimension."""

    def _check_values(self, covariances):
        if np.any(covariances <= 0):
            raise ValueError("covariances (variances) must be strictly positive.")

    def precision_cholesky(self, covariances):
        covariances = np.asarray(covariances, dtype=float)
        if np.any(covariances <= 0.0) or not np.all(np.isfinite(covariances)):
            raise ValueError(_NOT_POSITIVE_DEFINITE)
        return 1.0 / np.sqrt(covariances)

    def precisions(self, prec_chol):
        return prec_chol**2

    def second_moment_features(self, Xc):
        return Xc * Xc

    def _diagonal_precisions(self, prec_chol, d):
        """The diagonal of ``P = U U^T`` per start and component, ``(S, K, d)``."""
        raise NotImplementedError

    def quadratic_coefficients(self, prec_chol, means_c):
        precisions = self._diagonal_precisions(prec_chol, means_c.shape[-1])
        return 0.5 * precisions, precisions * means_c

    def _covariances_from_diagonal(self, diagonal):
        raise NotImplementedError

    def covariances_from_moments(self, second, nk, means_c, reg_covar):
        return self._covariances_from_diagonal(second / nk[..., None] - means_c**2 + reg_covar)

    def sample_component(self, rng, mean, covariances, k, count):
        scale = np.sqrt(covariances[k]) * np.ones(mean.shape[0])
        return mean + rng.standard_normal(size=(count, mean.shape[0])) * scale


class Diag(_Diagonal):
    """One diagonal covariance per component, ``(K, d)``."""

    name = "diag"

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features

    def log_det(self, prec_chol, n_components, n_features):
        return np.log(prec_chol).sum(axis=-1)

    def _diagonal_precisions(self, prec_chol, d):
        return prec_chol**2

    def _covariances_from_diagonal(self, diagonal):
        return diagonal


class Spherical(_Diagonal):
    """One variance per component, ``(K,)``."""

    name = "spherical"

    def shape(self, n_components, n_features):
        return (n_components,)

    def n_parameters(self, n_components, n_features):
        return n_components

    def log_det(self, prec_chol, n_components, n_features):
        return n_features * np.log(prec_chol)

    def _diagonal_precisions(self, prec_chol, d):
        precisions = prec_chol**2
        return np.broadcast_to(precisions[..., None], precisions.shape + (d,))

    def _covariances_from_diagonal(self, diagonal):
        return diagonal.mean(axis=-1)


#: The covariance types by name, in scikit-learn's order of ``covariance_type`` choices.
COVARIANCE_TYPES = {cls.name: cls() for cls in (Full, Diag, Spherical, Tied)}


def get_covariance(covariance_type: str) -> Covariance:
    """The :class:`Covariance` of ``covariance_type``, or ``ValueError`` listing the choices."""
    try:
        return COVARIANCE_TYPES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {tuple(COVARIANCE_TYPES)}, got {covariance_type!r}."
        ) from None
