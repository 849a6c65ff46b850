"""The data of a fit as linear features: costs and M-step statistics as matrix products.

For every covariance type with moment features (``d <= 16`` for full/tied, any ``d`` for
diag/spherical), the cost of component ``k`` is linear in a feature vector of the sample,

.. math:: C_{ik} = -\\log N(x_i; \\mu_k, \\Sigma_k) = \\langle A_k, \\phi(x_i) \\rangle, \\qquad
          \\phi(x) = (\\mathrm{vech}(x x^T), x, 1) \\text{ (full, tied) or } (x \\odot x, x, 1),

and the weighted sums an M-step needs are the same features summed with the weights:
``stats_k = sum_i w_ik phi(x_i)`` holds the mass (last entry), the first and the second
moments. A block of costs is then ONE matrix product ``A @ phi[:, cols]`` and the M-step
statistics of a block of weights ONE product ``W @ phi[cols]``, for every start of a batch
at once (``A`` has shape ``(S, K, p)``). Blocks are laid out ``(S, K, B)``: components on
the middle axis, samples contiguous, so reductions over components run along contiguous
rows even when ``K`` is 3.

Above ``d = 16`` full/tied costs loop over components (:class:`_LoopDesign`): the
``d (d + 1) / 2`` features would cost more than they save.

Data are centred on their mean first (the expansion then cancels at the scale of the
components, not of the data's offset); means go in and come out uncentred.
"""

from __future__ import annotations

import numpy as np

from .gaussian import precision_cholesky

_LOG_2PI = np.log(2.0 * np.pi)
# Above this dimension full/tied costs loop over components (see gaussian._MAX_DIM_FOR_MOMENTS).
MAX_DIM_FOR_MOMENTS = 16


def make_design(X, covariance_type):
    """The design of ``X`` (an ``(n, d)`` float array) for ``covariance_type``."""
    X = np.asarray(X, dtype=float)
    if covariance_type in ("full", "tied") and X.shape[1] > MAX_DIM_FOR_MOMENTS:
        return _LoopDesign(X, covariance_type)
    return _MomentDesign(X, covariance_type)


def stack_precision_cholesky(covariances, covariance_type):
    """:func:`~sinkhorn_em.gaussian.precision_cholesky` of a stack of parameter sets (leading axis S)."""
    if covariance_type in ("full", "tied"):
        shape = covariances.shape
        flat = covariances.reshape((-1,) + shape[-2:])
        return precision_cholesky(flat, "full").reshape(shape)
    return precision_cholesky(covariances, covariance_type)


class _BaseDesign:
    def __init__(self, X, covariance_type):
        self.covariance_type = covariance_type
        self.n, self.d = X.shape
        self.shift = X.mean(axis=0)

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

    def _log_det(self, prec_chol, K):
        """``log det U`` per start and component, ``(S, K)``."""
        kind = self.covariance_type
        if kind == "full":
            return np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(axis=-1)
        if kind == "tied":
            return np.repeat(np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(axis=-1)[:, None], K, axis=1)
        if kind == "diag":
            return np.log(prec_chol).sum(axis=-1)
        return self.d * np.log(prec_chol)


class _MomentDesign(_BaseDesign):
    """Moment features ``phi`` stored as a ``(p, n)`` array (one row per feature)."""

    def __init__(self, X, covariance_type):
        super().__init__(X, covariance_type)
        d = self.d
        Xc = (X - self.shift).T  # (d, n)
        if covariance_type in ("full", "tied"):
            rows, cols = np.triu_indices(d)
            self._rows, self._cols = rows, cols
            self.n_second = rows.size
            second = Xc[rows] * Xc[cols]
        else:
            self.n_second = d
            second = Xc * Xc
        self.features = np.empty((self.n_second + d + 1, self.n))
        self.features[: self.n_second] = second
        self.features[self.n_second : self.n_second + d] = Xc
        self.features[-1] = 1.0
        self.n_features = self.features.shape[0]

    def coefficients(self, means, covariances):
        """Cost coefficients ``(A, floor)`` for a stack of parameter sets.

        ``A`` has shape ``(S, K, p)`` and gives ``C = A @ phi``; ``floor`` ``(S, K)`` is the
        cost at the component's mean, below which a rounded cost is clipped (the expansion
        may round a Mahalanobis distance of ~0 to a tiny negative number).
        """
        kind, d = self.covariance_type, self.d
        S, K = means.shape[:2]
        prec_chol = stack_precision_cholesky(covariances, kind)
        means_c = means - self.shift
        log_det = self._log_det(prec_chol, K)
        A = np.empty((S, K, self.n_features))
        if kind in ("full", "tied"):
            precisions = prec_chol @ np.swapaxes(prec_chol, -1, -2)
            if kind == "tied":
                precisions = np.broadcast_to(precisions[:, None], (S, K, d, d))
            second = precisions[..., self._rows, self._cols]
            second = np.where(self._rows != self._cols, second, 0.5 * second)
            p_mu = np.einsum("skab,skb->ska", precisions, means_c)
        else:
            precisions = prec_chol**2
            if kind == "spherical":
                precisions = np.broadcast_to(precisions[..., None], (S, K, d))
            second = 0.5 * precisions
            p_mu = precisions * means_c
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
        kind, d, m = self.covariance_type, self.d, self.n_second
        nk = (stats[..., -1] if masses is None else masses) + 10.0 * np.finfo(float).eps
        means_c = stats[..., m : m + d] / nk[..., None]
        S, K = nk.shape
        if kind == "full":
            second = stats[..., :m] / nk[..., None]
            covariances = np.empty((S, K, d, d))
            covariances[..., self._rows, self._cols] = second
            covariances[..., self._cols, self._rows] = second
            covariances -= means_c[..., :, None] * means_c[..., None, :]
            covariances[..., np.arange(d), np.arange(d)] += reg_covar
        elif kind == "tied":
            total = stats[..., :m].sum(axis=1)
            covariances = np.empty((S, d, d))
            covariances[:, self._rows, self._cols] = total
            covariances[:, self._cols, self._rows] = total
            covariances -= np.einsum("sk,ska,skb->sab", nk, means_c, means_c)
            covariances /= nk.sum(axis=1)[:, None, None]
            covariances[:, np.arange(d), np.arange(d)] += reg_covar
        else:
            diag = stats[..., :d] / nk[..., None] - means_c**2 + reg_covar
            covariances = diag if kind == "diag" else diag.mean(axis=-1)
        return nk, means_c + self.shift, covariances


class _LoopDesign(_BaseDesign):
    """Full or tied covariances in more than 16 dimensions: one product per component."""

    def __init__(self, X, covariance_type):
        super().__init__(X, covariance_type)
        self.X = np.ascontiguousarray(X - self.shift)
        self.n_features = 1 + self.d + self.d * self.d

    def coefficients(self, means, covariances):
        S, K = means.shape[:2]
        prec_chol = stack_precision_cholesky(covariances, self.covariance_type)
        # Before broadcasting: _log_det takes a tied stack as (S, d, d).
        constant = 0.5 * self.d * _LOG_2PI - self._log_det(prec_chol, K)
        if self.covariance_type == "tied":
            prec_chol = np.broadcast_to(prec_chol[:, None], (S, K, self.d, self.d))
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
        second = stats[..., 1 + d :].reshape(stats.shape[:2] + (d, d))
        if self.covariance_type == "full":
            covariances = second / nk[..., None, None] - means_c[..., :, None] * means_c[..., None, :]
            covariances[..., np.arange(d), np.arange(d)] += reg_covar
        else:
            covariances = second.sum(axis=1) - np.einsum("sk,ska,skb->sab", nk, means_c, means_c)
            covariances /= nk.sum(axis=1)[:, None, None]
            covariances[:, np.arange(d), np.arange(d)] += reg_covar
        return nk, means_c + self.shift, covariances
