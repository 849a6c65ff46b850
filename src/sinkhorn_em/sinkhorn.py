"""Balanced entropic optimal transport by Sinkhorn iterations in the log domain.

Solves

.. math:: \\min_{P \\ge 0,\\ P 1 = a,\\ P^T 1 = b} \\langle P, C \\rangle
          + \\varepsilon\\, \\mathrm{KL}(P \\,\\|\\, a \\otimes b)

whose solution has the form :math:`P_{ik} = \\exp(f_i + g_k - C_{ik}/\\varepsilon)` for
dimensionless log-scalings ``f`` (rows) and ``g`` (columns). One iteration is a row
half-step followed by a column half-step,

.. math:: f_i \\leftarrow \\log a_i - \\mathrm{LSE}_k(g_k - C_{ik}/\\varepsilon), \\qquad
          g_k \\leftarrow \\log b_k - \\mathrm{LSE}_i(f_i - C_{ik}/\\varepsilon),

after which the column marginal is exact; the solver stops when the L1 error of the row
marginal, :math:`\\|P 1 - a\\|_1`, is at most ``tol``.

The iterates are those of log-domain Sinkhorn, computed with the absorption
stabilisation of Schmitzer (2019, "Stabilized sparse scaling algorithms for entropy
regularized transport problems"): the potentials are absorbed into a kernel
``exp(f + g - C/eps)`` by one log-domain row half-step; subsequent half-steps are
matrix-vector products with that kernel on scalings ``u = exp(f - f0)``,
``v = exp(g - g0)``. The kernel's rows sum to ``a`` right after the row step, so ``u``
stays within ``[1/max v, 1/min v]``; whenever ``v`` leaves ``[e^-50, e^50]`` or a
column mass underflows, the scalings are absorbed back into the potentials and the
step is redone in the log domain. This keeps the log-domain robustness (``eps = 1e-3`` with
components 50 standard deviations apart stays finite) at the cost of one
exponential per absorption instead of two per iteration.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

__all__ = ["SinkhornResult", "SinkhornConvergenceWarning", "sinkhorn_log", "check_marginals"]

# Scalings outside [exp(-50), exp(50)] are absorbed into the potentials.
_ABSORB_LOG_BOUND = 50.0
# A marginal below this would give an infinite scaling: do that half-step in the log domain.
_UNDERFLOW = 1e-280


class SinkhornConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` before the marginal error reached ``tol``."""


@dataclass
class SinkhornResult:
    """Result of :func:`sinkhorn_log`.

    Attributes
    ----------
    f : ndarray of shape (n,)
        Row log-scaling; ``P = exp(f[:, None] + g[None, :] - C / eps)``.
    g : ndarray of shape (K,)
        Column log-scaling; pass it as ``g_init`` to warm-start a related problem.
    n_iter : int
        Number of full iterations (row + column half-steps).
    converged : bool
        Whether the row-marginal L1 error reached ``tol``.
    marginal_error : float
        ``||P 1 - a||_1`` after the last column half-step (the column marginal is exact).
    plan : ndarray of shape (n, K)
        The transport plan.
    epsilon : float
        The entropic weight the problem was solved with.
    """

    f: np.ndarray
    g: np.ndarray
    n_iter: int
    converged: bool
    marginal_error: float
    plan: np.ndarray = field(repr=False)
    epsilon: float = 1.0

    def dual_potentials(self, epsilon: float | None = None):
        """Dual variables of the OT problem with reference ``a ⊗ b``: ``eps (f - log a)``, ``eps (g - log b)``.

        ``epsilon`` defaults to the one the problem was solved with.
        """
        epsilon = self.epsilon if epsilon is None else epsilon
        a = self.plan.sum(axis=1)
        b = self.plan.sum(axis=0)
        return epsilon * (self.f - np.log(a)), epsilon * (self.g - np.log(b))


def check_marginals(a, b, rtol: float = 1e-8):
    """Validate and return ``a``, ``b`` as float arrays (positive, finite, equal mass)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    for name, m in (("a", a), ("b", b)):
        if m.ndim != 1:
            raise ValueError(f"Marginal {name} must be 1-D, got shape {m.shape}.")
        if not np.all(np.isfinite(m)) or np.any(m <= 0):
            raise ValueError(
                f"Marginal {name} must be finite and strictly positive; drop zero-mass "
                "points or components before solving."
            )
    if not np.isclose(a.sum(), b.sum(), rtol=rtol, atol=0.0):
        raise ValueError(
            f"Marginals must have equal mass, got sum(a)={a.sum():.12g} and sum(b)={b.sum():.12g}; "
            "normalise both to 1."
        )
    return a, b


def _log_row_step(scaled_cost, g, log_a, a, out):
    """Log-domain row half-step. Returns ``f`` and fills ``out`` with ``exp(f + g - C/eps)``."""
    np.subtract(g[None, :], scaled_cost, out=out)
    row_max = out.max(axis=1)
    out -= row_max[:, None]
    np.exp(out, out=out)
    row_sum = out.sum(axis=1)
    f = log_a - row_max - np.log(row_sum)
    out *= (a / row_sum)[:, None]
    return f


def sinkhorn_log(
    a,
    b,
    cost,
    epsilon: float = 1.0,
    *,
    tol: float = 1e-9,
    max_iter: int = 1000,
    f_init=None,
    g_init=None,
    warn: bool = True,
) -> SinkhornResult:
    """Solve balanced entropic OT between ``a`` and ``b`` for ``cost`` (log-domain Sinkhorn).

    Parameters
    ----------
    a : array-like of shape (n,)
        Row marginal (strictly positive).
    b : array-like of shape (K,)
        Column marginal (strictly positive, same total mass as ``a``).
    cost : array-like of shape (n, K)
        Finite cost matrix ``C``.
    epsilon : float, default=1.0
        Entropic weight ``eps > 0``.
    tol : float, default=1e-9
        Stop when the row-marginal L1 error after a column half-step is ``<= tol``.
    max_iter : int, default=1000
        Maximum number of iterations (row + column half-steps).
    f_init, g_init : array-like, optional
        Warm start. The first half-step recomputes ``f`` from ``g``, so ``f_init`` is
        only used (to compute the starting ``g`` by a column half-step) when ``g_init``
        is not given. Default start: ``g = 0``.
    warn : bool, default=True
        Emit :class:`SinkhornConvergenceWarning` when ``max_iter`` is reached first.

    Returns
    -------
    SinkhornResult
        Potentials, plan, number of iterations, convergence flag, final marginal error.
    """
    a, b = check_marginals(a, b)
    cost = np.asarray(cost, dtype=float)
    n, K = cost.shape if cost.ndim == 2 else (None, None)
    if cost.ndim != 2 or cost.shape != (a.size, b.size):
        raise ValueError(f"cost must have shape (len(a), len(b)) = {(a.size, b.size)}, got {cost.shape}.")
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost contains NaN or inf; check the data and parameters that produced it.")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}.")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}.")

    scaled = cost / epsilon
    log_a, log_b = np.log(a), np.log(b)
    if g_init is not None:
        g = np.array(g_init, dtype=float, copy=True)
    elif f_init is not None:
        g = log_b - logsumexp(np.asarray(f_init, dtype=float)[:, None] - scaled, axis=0)
    else:
        g = np.zeros(K)
    if g.shape != (K,) or not np.all(np.isfinite(g)):
        raise ValueError(f"g_init must be a finite array of shape ({K},).")

    kernel = np.empty_like(scaled)
    row_mass = np.empty(n)
    n_iter, err, converged = 0, np.inf, False
    rebuild = True
    while True:
        if rebuild:
            # Absorb the potentials: after this row step the kernel's rows sum exactly to a,
            # so u = a / (kernel @ v) stays within [1 / max v, 1 / min v] and bounding v
            # (below) bounds both scalings.
            f0, g0 = _log_row_step(scaled, g, log_a, a, kernel), g
            u = np.ones(n)
            rebuild = False

        col_mass = kernel.T @ u
        if not col_mass.min() >= _UNDERFLOW:
            # A column's mass underflowed in the kernel: do this column step in the log domain.
            f = f0 + np.log(u)
            g = log_b - logsumexp(f[:, None] - scaled, axis=0)
            row_mass = np.exp(f + logsumexp(g[None, :] - scaled, axis=1))
            err = float(np.abs(row_mass - a).sum())
            n_iter += 1
            if err <= tol or n_iter >= max_iter:
                converged = err <= tol
                np.exp(f[:, None] + g[None, :] - scaled, out=kernel)
                break
            rebuild = True
            continue

        v = b / col_mass
        kv = kernel @ v
        # Row marginal after the column half-step; the column marginal is now exact.
        np.multiply(u, kv, out=row_mass)
        row_mass -= a
        err = float(np.abs(row_mass, out=row_mass).sum())
        n_iter += 1
        if err <= tol or n_iter >= max_iter:
            converged = err <= tol
            f, g = f0 + np.log(u), g0 + np.log(v)
            kernel *= u[:, None]
            kernel *= v[None, :]
            break
        log_v = np.log(v)
        if np.abs(log_v).max() > _ABSORB_LOG_BOUND or not np.isfinite(err):
            # Redo the next row step in the log domain from the absorbed column potential.
            g = g0 + log_v
            rebuild = True
            continue
        u = np.divide(a, kv, out=u)

    if warn and not converged:
        warnings.warn(
            f"Sinkhorn did not converge: marginal L1 error {err:.3g} > tol={tol:g} after "
            f"{n_iter} iterations (epsilon={epsilon:g}). Increase max_iter, loosen tol, or "
            "increase epsilon.",
            SinkhornConvergenceWarning,
            stacklevel=2,
        )
    return SinkhornResult(f=f, g=g, n_iter=n_iter, converged=converged, marginal_error=err, plan=kernel,
                          epsilon=float(epsilon))
