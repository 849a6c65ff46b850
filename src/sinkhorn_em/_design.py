"""The data of a fit as linear features: costs and M-step statistics as matrix products.

For every covariance type with moment features (``d <= 16`` for full/tied, any ``d`` for
diag/spherical), the cost of component ``k`` is linear in a feature vector of the sample,

.. math:: C_{ik} = -\\log N(x_i; \\mu_k, \\Sigma_k) = \\langle A_k, \\phi(x_i) \\rangle, \\qquad
          \\phi(x) = (q(x), x, 1),

with the second-moment features ``q(x)`` of the covariance type (``vech(x x^T)`` for full
and tied, ``x * x`` for diag and spherical; :mod:`._covariance`), and the weighted sums an
M-step needs are the same features summed with the weights: ``stats_k = sum_i w_ik
phi(x_i)`` holds the mass (last entry), the first and the second moments. A block of costs
is then ONE matrix product ``A @ phi[:, cols]`` and the M-step statistics of a block of
weights ONE product ``W @ phi[cols]``, for every start of a batch at once (``A`` has shape
``(S, K, p)``). Blocks are laid out ``(S, K, B)``: components on the middle axis, samples
contiguous, so reductions over components run along contiguous rows even when ``K`` is 3.

Above ``d = 16`` full/tied costs loop over components (:class:`_LoopDesign`): the
``d (d + 1) / 2`` features would cost more than they save.

Everything that depends on the covariance type is a method of its
:class:`~._covariance.Covariance`; this module only lays out the data and the products.

Data are centred on their mean first (the expansion then cancels at the scale of the
components, not of the data's offset); means go in and come out uncentred.
"""

from __future__ import annotations

import numpy as np

from ._covariance import MAX_DIM_FOR_MOMENTS, get_covariance

__all__ = ["MAX_DIM_FOR_MOMENTS", "make_design"]

_LOG_2PI = np.log(2.0 * np.pi)


def make_design(X, covariance_type, shift=None):
    """The design of ``X`` (an ``(n, d)`` float array) for ``covariance_type``.

    ``shift`` is the centre subtracted from the data (default: their mean).
    """
    X = np.asarray(X, dtype=float)
    covariance = get_covariance(covariance_type)
    if covariance.uses_moment_features(X.shape[1]):
        return _MomentDesign(X, covariance, shift)
    return _LoopDesign(X, covariance, shift)


class _BaseDesign:
    def __init__(self, X, covariance, shift=None):
        self.covariance = covariance
        self.covariance_type = covariance.name
        self.n, self.d = X.shape
        self.shift = X.mean(axis=0) if shift is None else np.asarray(shift, dtype=float)

    def coefficients(self, means, covariances):
        """Cost coefficients of a stack of parameter sets (``means`` ``(S, K, d)``, covariances with axis S)."""
        return self.coefficients_from_precision_cholesky(means, self.covariance.precision_cholesky(covariances))

    def scaled_statistics(self, kernel, row_scale, col_scale, cols):
        """:meth:`statistics` of the weights ``col_scale[s, k] * kernel[s, k, i] * row_scale[s, i]``.

        ``col_scale=None`` means ones.
        """
        weights = kernel * row_scale[:, None, :]
        if col_scale is not None:
            weights *= col_scale[:, :, None]
        return self.statistics(weights, cols)

    def log_kernel_coefficients(self, coefficients, offsets, scale):
        """Prepare :meth:`log_kernel` for ``offsets[s, k] - scale * C[s, k, i]``."""
        return coefficients, np.asarray(offsets, dtype=float), float(scale)

    def log_kernel(self, prepared, cols, out=None):
        """``offsets[s, k] - scale * C[s, k, i]`` for the samples ``cols``, ``(S, K, B)``."""
        coefficients, offsets, scale = prepared
        out = self.cost(coefficients, cols, out)
        out *= -scale
        out += offsets[:, :, None]
        return out


class _MomentDesign(_BaseDesign):
    """Moment features ``phi`` stored as a ``(p, n)`` array (one row per feature)."""

    def __init__(self, X, covariance, shift=None):
        super().__init__(X, covariance, shift)
        d = self.d
        Xc = (X - self.shift).T  # (d, n)
        second = covariance.second_moment_features(Xc)
        self.n_second = second.shape[0]
        self.features = np.empty((self.n_second + d + 1, self.n))
        self.features[: self.n_second] = second
        self.features[self.n_second : self.n_second + d] = Xc
        self.features[-1] = 1.0
        self.n_features = self.features.shape[0]

    def coefficients_from_precision_cholesky(self, means, prec_chol):
        """Cost coefficients ``(A, floor)`` for a stack of parameter sets.

        ``A`` has shape ``(S, K, p)`` and gives ``C = A @ phi``; ``floor`` ``(S, K)`` is the
        cost at the component's mean, below which a rounded cost is clipped (the expansion
        may round a Mahalanobis distance of ~0 to a tiny negative number).
        """
        d = self.d
        S, K = means.shape[:2]
        means_c = means - self.shift
        log_det = self.covariance.log_det(prec_chol, K, d)
        A = np.empty((S, K, self.n_features))
        second, p_mu = self.covariance.quadratic_coefficients(prec_chol, means_c)
        floor = 0.5 * d * _LOG_2PI - log_det
        A[..., : self.n_second] = second
        A[..., self.n_second : -1] = -p_mu
        A[..., -1] = 0.5 * np.einsum("ska,ska->sk", p_mu, means_c) + floor
        return A, floor

    def cost(self, coefficients, cols, out=None):
        """Costs ``(S, K, B)`` of the samples ``cols`` (a slice) for the stack ``coefficients``."""
        A, floor = coefficients
        out = np.matmul(A, self.features[:, cols], out=out)
        return np.maximum(out, floor[:, :, None], out=out)

    def statistics(self, weights, cols):
        """``sum_i weights[s, k, i] phi(x_i)`` over the samples ``cols``: ``(S, K, p)``."""
        return np.matmul(weights, self.features[:, cols].T)

    def scaled_statistics(self, kernel, row_scale, col_scale, cols):
        if kernel.shape[1] <= self.n_features:
            return super().scaled_statistics(kernel, row_scale, col_scale, cols)
        # More components than features: scaling the (p, B) features instead of the (K, B)
        # weights is the smaller pass.
        scaled = self.features[:, cols] * row_scale[:, None, :]
        if kernel.dtype != scaled.dtype:
            scaled = scaled.astype(kernel.dtype)
        stats = np.matmul(kernel, np.swapaxes(scaled, 1, 2))
        if col_scale is not None:
            stats *= col_scale[:, :, None]
        return stats

    def log_kernel_coefficients(self, coefficients, offsets, scale):
        # offsets - scale * <A, phi> is linear in phi too: one product gives it. (The cost
        # floor of ``cost`` is left out: it only corrects rounding of a distance of ~0.)
        A = coefficients[0] * -float(scale)
        A[..., -1] += offsets
        return A

    def log_kernel(self, prepared, cols, out=None):
        return np.matmul(prepared, self.features[:, cols], out=out)

    def parameters(self, stats, reg_covar, masses=None):
        """M-step estimates ``(nk, means, covariances)`` from statistics summed over all samples."""
        d, m = self.d, self.n_second
        nk = (stats[..., -1] if masses is None else masses) + 10.0 * np.finfo(float).eps
        means_c = stats[..., m : m + d] / nk[..., None]
        covariances = self.covariance.covariances_from_moments(stats[..., :m], nk, means_c, reg_covar)
        return nk, means_c + self.shift, covariances


class _LoopDesign(_BaseDesign):
    """Full or tied covariances in more than 16 dimensions: one product per component."""

    def __init__(self, X, covariance, shift=None):
        super().__init__(X, covariance, shift)
        self.X = np.ascontiguousarray(X - self.shift)
        self.n_features = 1 + self.d + self.d * self.d

    def coefficients_from_precision_cholesky(self, means, prec_chol):
        S, K = means.shape[:2]
        constant = 0.5 * self.d * _LOG_2PI - self.covariance.log_det(prec_chol, K, self.d)
        prec_chol = self.covariance.component_factors(prec_chol, K)
        means_c = means - self.shift
        shifted = np.einsum("ska,skab->skb", means_c, prec_chol)
        return prec_chol, shifted, constant

    def cost(self, coefficients, cols, out=None):
        prec_chol, shifted, constant = coefficients
        S, K = constant.shape
        X = self.X[cols]
        if out is None:
            out = np.empty((S, K, X.shape[0]))
        for s in range(S):
            for k in range(K):
                y = X @ prec_chol[s, k]
                y -= shifted[s, k]
                out[s, k] = np.einsum("ij,ij->i", y, y)
        out *= 0.5
        out += constant[:, :, None]
        return out

    def statistics(self, weights, cols):
        S, K, _ = weights.shape
        X = self.X[cols]
        d = self.d
        stats = np.empty((S, K, self.n_features))
        stats[..., 0] = weights.sum(axis=-1)
        stats[..., 1 : 1 + d] = weights @ X
        for s in range(S):
            for k in range(K):
                stats[s, k, 1 + d :] = ((weights[s, k][:, None] * X).T @ X).ravel()
        return stats

    def parameters(self, stats, reg_covar, masses=None):
        d = self.d
        nk = (stats[..., 0] if masses is None else masses) + 10.0 * np.finfo(float).eps
        means_c = stats[..., 1 : 1 + d] / nk[..., None]
        scatter = stats[..., 1 + d :].reshape(stats.shape[:2] + (d, d))
        covariances = self.covariance.covariances_from_scatter(scatter, nk, means_c, reg_covar)
        return nk, means_c + self.shift, covariances
