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
regularized transport problems") by the engine both solvers share
(:class:`~sinkhorn_em._balanced.Problem`, with its guards in :mod:`._numerics`): the
potentials are absorbed into a kernel ``exp(f0 + g0 - C/eps)`` by one log-domain row
half-step; subsequent half-steps are matrix-vector products with that kernel on scalings
``u = exp(f - f0)``, ``v = exp(g - g0)``, the row sums and the column masses of one
iteration in one blocked pass over the kernel. Whenever ``v`` leaves ``[e^-50, e^50]``
the scalings are absorbed back into the potentials (the next row step is done in the log
domain), and a column step whose column mass underflowed is taken in the log domain. This
keeps the log-domain robustness (``eps = 1e-3`` with components 50 standard deviations
apart stays finite) at the cost of one exponential per absorption instead of two per
iteration.

:func:`solve_balanced` picks a solver by name (``BALANCED_SOLVERS``) for the callers
that let their user choose (:func:`~sinkhorn_em.losses.balanced_value`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from . import _balanced, _newton
from ._numerics import UNDERFLOW
from ._parallel import Workers, check_n_jobs

__all__ = [
    "BALANCED_SOLVERS",
    "SinkhornConvergenceWarning",
    "SinkhornResult",
    "check_marginals",
    "sinkhorn_log",
    "sinkhorn_newton",
    "solve_balanced",
]


class SinkhornConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` before the marginal error reached ``tol``."""


@dataclass
class SinkhornResult:
    """Result of :func:`sinkhorn_log` and :func:`sinkhorn_newton`.

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
        The transport plan ``P``.
    epsilon : float
        The entropic weight the problem was solved with.
    row_marginal : ndarray of shape (n,) or None
        ``P 1``, the plan's row sums (its column sums are ``b`` up to rounding).
    hessian : ndarray of shape (K, K) or None
        :func:`sinkhorn_newton` only: the negative Hessian of the semi-dual in ``g`` that its
        last Newton steps used; pass it as ``hessian_init`` with ``g_init`` to warm-start a
        related problem. ``None`` from :func:`sinkhorn_log`.
    n_hessians : int
        :func:`sinkhorn_newton` only: how many Hessians it computed (each an ``n K^2``
        Gram product); 0 from :func:`sinkhorn_log`.
    """

    f: np.ndarray
    g: np.ndarray
    n_iter: int
    converged: bool
    marginal_error: float
    plan: np.ndarray = field(repr=False)
    epsilon: float = 1.0
    row_marginal: np.ndarray | None = field(default=None, repr=False)
    hessian: np.ndarray | None = field(default=None, repr=False)
    n_hessians: int = 0

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
            f"Marginals must have equal mass, got sum(a)={a.sum():.12g} and sum(b)={b.sum():.12g}; normalise both to 1."
        )
    return a, b


def _check_problem(a, b, cost, epsilon, max_iter):
    """Validate a balanced problem; return the marginals and ``cost / epsilon``."""
    a, b = check_marginals(a, b)
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2 or cost.shape != (a.size, b.size):
        raise ValueError(f"cost must have shape (len(a), len(b)) = {(a.size, b.size)}, got {cost.shape}.")
    # A finite sum rules out NaN and inf at half the cost of an elementwise test.
    if not np.isfinite(cost.sum()) and not np.all(np.isfinite(cost)):
        raise ValueError("cost contains NaN or inf; check the data and parameters that produced it.")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}.")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
    # The solvers never write into the scaled cost, so eps = 1 needs no copy.
    return a, b, (cost if epsilon == 1 else cost / epsilon)


def _initial_column_potential(scaled, log_b, f_init, g_init):
    """``g_init``, else the column half-step implied by ``f_init``, else zeros."""
    K = scaled.shape[1]
    if g_init is not None:
        g = np.array(g_init, dtype=float, copy=True)
    elif f_init is not None:
        g = log_b - logsumexp(np.asarray(f_init, dtype=float)[:, None] - scaled, axis=0)
    else:
        g = np.zeros(K)
    if g.shape != (K,) or not np.all(np.isfinite(g)):
        raise ValueError(f"g_init must be a finite array of shape ({K},).")
    return g


def _warn_not_converged(err, tol, n_iter, epsilon):
    warnings.warn(
        f"Sinkhorn did not converge: marginal L1 error {err:.3g} > tol={tol:g} after "
        f"{n_iter} iterations (epsilon={epsilon:g}). Increase max_iter, loosen tol, or "
        "increase epsilon.",
        SinkhornConvergenceWarning,
        stacklevel=3,
    )


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
    n_jobs: int = 1,
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
    n_jobs : int, default=1
        Threads for the passes over the kernel (blocks of rows); ``-1``: every core. The
        result is the same bit for bit whatever ``n_jobs`` (see
        :class:`~sinkhorn_em.mixture.EOTGaussianMixture`'s ``n_jobs``).

    Returns
    -------
    SinkhornResult
        Potentials, plan, number of iterations, convergence flag, final marginal error.
    """
    n_jobs = check_n_jobs(n_jobs)
    a, b, scaled = _check_problem(a, b, cost, epsilon, max_iter)
    with Workers(n_jobs) as workers:
        result = _sinkhorn_log(a, b, scaled, epsilon, tol, max_iter, f_init, g_init, workers)
    if warn and not result.converged:
        _warn_not_converged(result.marginal_error, tol, result.n_iter, epsilon)
    return result


def _sinkhorn_log(a, b, scaled, epsilon, tol, max_iter, f_init, g_init, workers):
    n, K = scaled.shape
    g = _initial_column_potential(scaled, np.log(b), f_init, g_init)
    problem = _balanced.Problem(_balanced.DenseCost(scaled), a, b[None, :], store=True, workers=workers)
    only = np.zeros(1, dtype=int)  # the index of the one problem (a Problem holds a batch)
    lower, upper = problem.log_v_bounds
    # Work arrays of n samples, written in place every iteration (see Problem.row_step's u_out).
    row_sums, spare_u, residual = np.empty((1, n)), np.empty((1, n)), np.empty(n)
    n_iter, rebuild = 0, True
    while True:
        if rebuild:
            # Absorb g into a fresh kernel by a log-domain row half-step: the rows of
            # diag(u) kernel sum to a, problem.col holds its column masses, log_v = 0.
            problem.build(only, g[None])
            rebuild = False
        col = problem.col[0]
        if not col.min() >= UNDERFLOW:
            # A column's mass underflowed in the kernel: take this column step in the log
            # domain. The build at the new g is the next row step; the plan exp(f + g - C/eps)
            # of this iterate is that build's kernel with the row scaling exp(f - f0).
            f = problem.f0[0] + np.log(problem.u[0])
            g = problem.log_column_step(only, f[None])[0]
            problem.build(only, g[None], row_sums=row_sums)
            scale = np.exp(f - problem.f0[0])
            rows = scale * row_sums[0]
            err = float(np.abs(rows - a).sum())
            n_iter += 1
            if err <= tol or n_iter >= max_iter:
                problem.u[0] = scale
                log_v = problem.log_v[0]
                break
            continue

        # Column half-step v <- v b / col (the column marginal is then exact), then, in the
        # same pass, the next row half-step; row_sums = kernel v gives the row marginal
        # u * row_sums of the plan after the column half-step, the stopping rule's measure.
        log_v = problem.log_v[0] + problem.log_b[0] - np.log(col)
        _, next_col, _, ok = problem.row_step(only, log_v[None], row_sums=row_sums, dual=False, u_out=spare_u)
        np.multiply(problem.u[0], row_sums[0], out=residual)
        residual -= a
        err = float(np.abs(residual, out=residual).sum())
        n_iter += 1
        if err <= tol or n_iter >= max_iter:
            f = problem.f0[0] + np.log(problem.u[0])
            g = problem.g0[0] + log_v
            break
        if not (ok[0] and math.isfinite(err) and lower <= log_v.min() and log_v.max() <= upper):
            # Redo the next row step in the log domain from the absorbed column potential.
            g = problem.g0[0] + log_v
            rebuild = True
            continue
        problem.log_v[0], problem.col[0] = log_v, next_col[0]
        problem.u, spare_u = spare_u, problem.u  # the new row scaling (no copy)

    plan = np.empty((n, K))
    rows = problem.finish(log_v[None], plan=plan, release=True)[0][0]
    converged = err <= tol
    return SinkhornResult(
        f=f,
        g=g,
        n_iter=n_iter,
        converged=converged,
        marginal_error=err,
        plan=plan,
        epsilon=float(epsilon),
        row_marginal=rows,
    )


def _check_hessian_init(hessian_init, K):
    if hessian_init is None:
        return None
    hessian = np.asarray(hessian_init, dtype=float)
    if hessian.shape != (K, K) or not np.all(np.isfinite(hessian)):
        raise ValueError(
            f"hessian_init must be a finite array of shape ({K}, {K}); pass a previous "
            "SinkhornResult.hessian for the same components."
        )
    return hessian


def sinkhorn_newton(
    a,
    b,
    cost,
    epsilon: float = 1.0,
    *,
    tol: float = 1e-9,
    max_iter: int = 100,
    f_init=None,
    g_init=None,
    hessian_init=None,
    warn: bool = True,
    n_jobs: int = 1,
) -> SinkhornResult:
    """Solve balanced entropic OT by Newton's method on the column potential.

    Same problem, same solution and same stopping rule as :func:`sinkhorn_log`; meant for
    many rows and few columns (``n >> K``), where Sinkhorn can need hundreds of
    iterations while a ``K x K`` Newton system is cheap. Every iterate keeps the row
    half-step of Sinkhorn, :math:`f_i = \\log a_i - \\mathrm{LSE}_k(g_k - C_{ik}/\\varepsilon)`,
    so the rows always sum to ``a``; what changes is the update of ``g``. Eliminating ``f``
    leaves the concave semi-dual

    .. math:: \\varphi(g) = \\langle b, g\\rangle - \\sum_i a_i \\log \\sum_k e^{g_k - C_{ik}/\\varepsilon}
              + \\mathrm{const},

    whose gradient is the column residual :math:`b - P^T 1` and whose negative Hessian
    :math:`H = \\mathrm{diag}(P^T 1) - P^T \\mathrm{diag}(1/a) P` is a graph Laplacian on the
    components (edge weights: the mass two components share). Sinkhorn's column
    half-step, :math:`g \\leftarrow g + \\log(b / P^T 1)`, is ascent preconditioned by
    :math:`\\mathrm{diag}(P^T 1)` alone; it contracts slowly exactly when ``H`` is far from
    that diagonal, as with well-separated components whose target masses ``b`` differ from
    their current ones. Each iteration here:

    * takes the Sinkhorn column half-step while some column mass is off by more than a
      factor ``e`` (the quadratic model is poor there);
    * otherwise solves ``H step = b - P^T 1`` and backtracks until Armijo's condition on
      :math:`\\varphi` holds (or, once the predicted gain is below rounding, until the
      residual shrinks), falling back to the Sinkhorn half-step if no step is accepted.
      ``H`` is reused, with BFGS corrections, while full steps shrink the residual's norm
      at least tenfold, and recomputed otherwise.
    * when that step is longer than the model is trusted for (20 nats) along a *loose
      group* of components, which shares less than 1e-3 of the smaller column mass with
      the rest (the graph of ``H`` falls apart there), or when Sinkhorn's steps stall
      (the residual shrinks by less than 1% in a step), the group's potentials are moved
      together to the group's own root: the shift ``c`` with
      :math:`\\sum_i a_i\\,\\sigma(c + \\ell_{iG}) = \\sum_{k \\in G} b_k`, where
      :math:`\\ell_{iG}` is the logit of sample ``i``'s responsibility to the group,
      computed from the costs in the log domain. Near-hard assignments need such shifts
      of hundreds to thousands of nats, which capped Newton steps or Sinkhorn's steps
      (about one nat each) would take hundreds of iterations to make, or never make
      across the kernel's e^-600 floor.

    When the column residual ``||P^T 1 - b||_1`` is at most ``tol`` (or, once, within
    100 ``tol``) a last Sinkhorn column half-step makes the columns exact; its row error,
    reported as ``marginal_error``, is at most that residual. As in
    :func:`sinkhorn_log`, the potentials are absorbed into a kernel ``exp(f + g - C/eps)``
    and iterations work on scalings, rebuilding the kernel when a scaling leaves
    ``[e^-50, e^50]``, and a column whose mass underflows is updated in the log domain.

    Parameters
    ----------
    a, b, cost, epsilon, tol, f_init, g_init, warn, n_jobs
        As in :func:`sinkhorn_log`.
    max_iter : int, default=100
        Maximum number of iterations (Newton or Sinkhorn steps, including the last
        column half-step); ``max_iter=1`` is one Sinkhorn iteration.
    hessian_init : array-like of shape (K, K), optional
        A previous :attr:`SinkhornResult.hessian` to start from instead of computing one
        (warm start for a related problem, together with ``g_init``); replaced as soon
        as a step with it contracts the residual too little.

    Returns
    -------
    SinkhornResult
        With ``hessian`` set to the last ``H`` used.

    Notes
    -----
    An iteration costs a few ``(n, K)`` matrix-vector products per line-search trial (the
    row sums and column masses are computed in one blocked pass over the kernel) plus,
    when ``H`` is recomputed, an ``n K^2`` Gram product, done in single precision: ``W``
    is a sum of non-negative terms, so every entry, and the Laplacian in the positive
    semi-definite order, comes out to a relative ~1e-6, while the residual and line
    search stay in double precision. From a warm start a few iterations reach
    ``tol = 1e-9`` where Sinkhorn needs hundreds.
    """
    n_jobs = check_n_jobs(n_jobs)
    a, b, scaled = _check_problem(a, b, cost, epsilon, max_iter)
    n, K = scaled.shape
    g = _initial_column_potential(scaled, np.log(b), f_init, g_init)
    hessian = _check_hessian_init(hessian_init, K)
    with Workers(n_jobs) as workers:
        problem = _balanced.Problem(_balanced.DenseCost(scaled), a, b[None, :], store=True, workers=workers)
        solution = _newton.solve(
            problem,
            g[None, :],
            tol=np.array([tol], dtype=float),
            max_iter=max_iter,
            hessian_init=None if hessian is None else (hessian[None], np.ones(1, dtype=bool)),
        )
        plan = np.empty((n, K))
        rows = problem.finish(solution.log_v, plan=plan, release=True)[0][0]
    log_v = solution.log_v[0]
    u = problem.u[0]
    err = float(np.abs(rows - a).sum())
    converged = err <= tol
    n_iter = int(solution.n_iter[0])
    if warn and not converged:
        _warn_not_converged(err, tol, n_iter, epsilon)
    return SinkhornResult(
        f=problem.f0[0] + np.log(u),
        g=problem.g0[0] + log_v,
        n_iter=n_iter,
        converged=converged,
        marginal_error=err,
        plan=plan,
        epsilon=float(epsilon),
        row_marginal=rows,
        hessian=solution.hessian[0] if solution.has_hessian[0] else None,
        n_hessians=int(solution.n_hessians[0]),
    )


#: The balanced solvers by name: same problem, same stopping rule, different iterations.
BALANCED_SOLVERS = {"sinkhorn": sinkhorn_log, "newton": sinkhorn_newton}


def solve_balanced(
    a,
    b,
    cost,
    epsilon: float = 1.0,
    *,
    solver: str = "sinkhorn",
    tol: float = 1e-9,
    max_iter: int = 1000,
    g_init=None,
    warn: bool = True,
    hessian_init=None,
    n_jobs: int = 1,
) -> SinkhornResult:
    """Solve balanced entropic OT with the solver named ``solver`` (a key of ``BALANCED_SOLVERS``).

    ``"sinkhorn"`` is :func:`sinkhorn_log`, ``"newton"`` :func:`sinkhorn_newton`; the other
    arguments are theirs. ``hessian_init`` warm-starts the Newton solver's curvature and is
    ignored by Sinkhorn, which has none.
    """
    if solver not in BALANCED_SOLVERS:
        raise ValueError(f"Unknown balanced solver {solver!r}; choose one of {sorted(BALANCED_SOLVERS)}.")
    options = {"hessian_init": hessian_init} if solver == "newton" else {}
    return BALANCED_SOLVERS[solver](
        a, b, cost, epsilon, tol=tol, max_iter=max_iter, g_init=g_init, warn=warn, n_jobs=n_jobs, **options
    )
