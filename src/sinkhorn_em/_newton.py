"""Newton's method on the column potential for a batch of balanced problems (:mod:`._balanced`).

The iterations of :func:`~sinkhorn_em.sinkhorn.sinkhorn_newton`, vectorised over the ``S``
problems of a :class:`~sinkhorn_em._balanced.Problem`: each problem takes its own steps (a
Newton step on the semi-dual with an Armijo line search, or Sinkhorn's column step far from
the solution), keeps its own Hessian (reused with BFGS corrections while it contracts the
residual well enough) and stops at its own tolerance; the problems share only the passes
over the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from ._numerics import NARROW, TINY, UNDERFLOW

# The quadratic model behind a Newton step is not trusted beyond this change of the column
# log-scaling: longer steps are scaled back to it before the line search.
MAX_NEWTON_STEP = 20.0
# Column log-scalings spanning at most this fraction of the problem's bounds are shifted
# back inside them instead of being absorbed by a rebuild (see Problem.shift).
SHIFTABLE_SPAN = 0.8
MAX_BACKTRACKS = 12
# Ridge on the Hessian, relative to the column masses: keeps it invertible along groups of
# components that share no point (where the step is then decided by the line search).
NEWTON_RIDGE = 1e-10
# Below this predicted increase the semi-dual's rounding error hides Armijo's test: a step
# is accepted there when it shrinks the column residual.
ROUNDING_LEVEL = 1e-13
# Newton steps are tried once every column mass is within this log-ratio of its target.
NEWTON_REGION = 1.0
# Hessian reuse (see _worthwhile_contraction): a step whose residual ratio (new / old) is
# below the first bound always keeps the Hessian, above the second always refreshes it.
MIN_CHORD_CONTRACTION = 1e-3
MAX_CHORD_CONTRACTION = 0.5
# Cost of a fresh Hessian in line-search passes: 1 + K / GRAM_COLUMNS_PER_TRIAL for the
# single-precision Gram product, NARROW_HESSIAN_TRIALS for few components.
GRAM_COLUMNS_PER_TRIAL = 200.0
NARROW_HESSIAN_TRIALS = 0.5


@dataclass
class Solution:
    """Per-problem outcome of :func:`solve` (arrays with a leading axis ``S``)."""

    log_v: np.ndarray  # final column log-scaling (after the last column half-step)
    n_iter: np.ndarray
    n_hessians: np.ndarray
    hessian: np.ndarray
    has_hessian: np.ndarray
    tol: np.ndarray  # the tolerance each problem was solved to
    start_residual: np.ndarray  # the column residual after the first build


def worthwhile_contraction(remaining, K):
    """Largest residual contraction per step for which reusing the Hessian beats a fresh one.

    Reaching tol from ``remaining = residual / tol`` takes about ``log(remaining) /
    log(1 / rho)`` steps contracting by ``rho``, or about two Newton steps with fresh
    Hessians, each costing ``1 + c`` line-search passes where a Hessian costs ``c``.
    Reuse pays while ``rho < remaining ** (-1 / (2 (1 + c)))``.
    """
    hessian_cost = NARROW_HESSIAN_TRIALS if K <= NARROW else 1.0 + K / GRAM_COLUMNS_PER_TRIAL
    exponent = -1.0 / (2.0 * (1.0 + hessian_cost))
    remaining = np.asarray(remaining, dtype=float)
    with np.errstate(divide="ignore", over="ignore"):
        rho = np.clip(np.maximum(remaining, 1.0) ** exponent, MIN_CHORD_CONTRACTION, MAX_CHORD_CONTRACTION)
    return np.where(remaining <= 1.0, 1.0, rho)


def bfgs_update(hessian, step, gradient_change):
    """BFGS updates of negative semi-dual Hessians ``(S, K, K)`` after ``step`` changed the column masses.

    Constant shifts of ``g`` change nothing, so each step is projected off them first; the
    update then keeps the Laplacian's null vector and its positive semi-definiteness
    (``gradient_change @ step > 0`` by strict concavity along the step). A problem whose
    curvature along the step is lost in rounding keeps its Hessian.
    """
    step = step - step.sum(axis=1, keepdims=True) / step.shape[1]
    curvature = np.einsum("sk,sk->s", gradient_change, step)
    hessian_step = np.einsum("skj,sj->sk", hessian, step)
    model_curvature = np.einsum("sk,sk->s", step, hessian_step)
    scale = np.sqrt(np.einsum("sk,sk->s", gradient_change, gradient_change) * np.einsum("sk,sk->s", step, step))
    ok = (curvature > 1e-10 * scale) & (model_curvature > 0.0)
    if not ok.any():
        return hessian
    out = hessian.copy()
    hs, gc = hessian_step[ok], gradient_change[ok]
    out[ok] += gc[:, :, None] * gc[:, None, :] / curvature[ok, None, None]
    out[ok] -= hs[:, :, None] * hs[:, None, :] / model_curvature[ok, None, None]
    return out


def newton_steps(hessian, col, residual):
    """Solve the regularised Newton systems; ``(steps, ok)`` with ``ok`` False where singular.

    The Laplacian vanishes along constant shifts of ``g``, which change nothing; that
    direction is pinned with a rank-one term (the residual sums to zero, so the step is
    unchanged).
    """
    count, K = col.shape
    system = hessian.copy()
    diag = np.arange(K)
    system[:, diag, diag] += NEWTON_RIDGE * col
    pin = (np.trace(hessian, axis1=1, axis2=2) + NEWTON_RIDGE * col.sum(axis=1)) / (K * K)
    system += pin[:, None, None]
    ok = np.ones(count, dtype=bool)
    try:
        factor = np.linalg.cholesky(system)
    except np.linalg.LinAlgError:
        factor = np.zeros_like(system)
        for s in range(count):
            try:
                factor[s] = np.linalg.cholesky(system[s])
            except np.linalg.LinAlgError:
                ok[s] = False
                factor[s] = np.eye(K)
    # Two triangular solves with the Cholesky factor (LAPACK's potrs, as scipy's cho_solve;
    # numpy's solve would factor the triangular matrices again: 10x slower at K = 195).
    steps = np.empty((count, K))
    for s in range(count):
        steps[s] = lapack.dpotrs(factor[s], residual[s], lower=1)[0]
    ok &= np.all(np.isfinite(steps), axis=1)
    return steps, ok


def solve(problem, g, *, tol, max_iter, hessian_init=None, newton=True):
    """Run the iterations of every problem of ``problem`` from column potentials ``g`` (``(S, K)``).

    ``tol`` is an array ``(S,)``: problem ``s`` stops when its column residual
    ``||b - P^T 1||_1`` is at most ``tol[s]`` (or after ``max_iter`` iterations); a last
    Sinkhorn column half-step, taken by :meth:`Problem.finish` with the returned
    ``log_v``, then makes its columns exact. ``hessian_init`` is ``None`` or a pair
    ``(hessians (S, K, K), available (S,))``. ``newton=False`` takes only Sinkhorn steps.
    ``relative`` (``(S,)``) loosens ``tol[s]`` to ``relative[s]`` times the residual at the
    starting point (an inexact solve that shrinks its starting residual by that factor).

    The problem keeps the last iterate (rows exact, ``u`` and ``log_v``) for the semi-dual
    value; the returned ``log_v`` includes the last column half-step.
    """
    S, K = problem.S, problem.K
    b, log_b = problem.b, problem.log_b
    g = np.array(g, dtype=float)
    if hessian_init is None:
        hessian, has_hessian = np.zeros((S, K, K)), np.zeros(S, dtype=bool)
    else:
        hessian, has_hessian = np.array(hessian_init[0], dtype=float), np.array(hessian_init[1], dtype=bool)
    stale = np.zeros(S, dtype=bool)
    evaluations = np.zeros(S, dtype=int)
    n_iter = np.zeros(S, dtype=int)
    active = np.ones(S, dtype=bool)
    rebuild = np.ones(S, dtype=bool)
    log_finished = np.zeros(S, dtype=bool)
    first = np.ones(S, dtype=bool)
    tol = np.array(tol, dtype=float)
    start_residual = np.full(S, np.nan)
    while True:
        todo = np.flatnonzero(active & rebuild)
        if todo.size:
            wanted = None
            # A (re)build gives the problems without a usable Hessian a fresh one from its
            # blocks while they are in cache.
            if newton:
                wanted = stale[todo] | ~has_hessian[todo]
            fresh = problem.build(todo, g[todo], hessian=wanted)
            if fresh is not None:
                chosen = todo[wanted]
                hessian[chosen] = fresh[wanted]
                has_hessian[chosen] = True
                stale[chosen] = False
                evaluations[chosen] += 1
            started = todo[first[todo]]
            start_residual[started] = np.abs(problem.b[started] - problem.col[started]).sum(axis=1)
            first[todo] = False
            rebuild[todo] = False
        current = np.flatnonzero(active)
        if current.size == 0:
            break
        n_iter[current] += 1
        underflow = ~(problem.col[current].min(axis=1) >= UNDERFLOW)
        if underflow.any():
            # A column's mass underflowed in the kernel: take this column step in the log domain.
            low = current[underflow]
            f = problem.f0[low] + np.log(problem.u[low])
            g[low] = problem.log_column_step(low, f)
            last = n_iter[low] >= max_iter
            if last.any():
                done = low[last]
                problem.absorb(done, f[last], g[done])
                active[done] = False
                log_finished[done] = True
            rebuild[low[~last]] = True
            current = current[~underflow]
        residual = np.abs(b[current] - problem.col[current]).sum(axis=1)
        finished = (residual <= tol[current]) | (n_iter[current] >= max_iter)
        active[current[finished]] = False
        stepping = current[~finished]
        if stepping.size:
            _step(problem, stepping, g, rebuild, tol, hessian, has_hessian, stale, evaluations, newton)
    log_v = problem.log_v.copy()
    regular = ~log_finished
    log_v[regular] += log_b[regular] - np.log(problem.col[regular])
    return Solution(log_v, n_iter, evaluations, hessian, has_hessian, tol, start_residual)


def _step(problem, idx, g, rebuild, tol, hessian, has_hessian, stale, evaluations, newton):
    """One iteration (Newton step with line search, or Sinkhorn step) of the problems ``idx``."""
    b = problem.b[idx]
    col = problem.col[idx]
    log_v = problem.log_v[idx]
    dual = problem.dual[idx]
    residual = b - col
    accepted = np.zeros(idx.size, dtype=bool)
    if newton:
        # Far from the solution (a column mass off by more than a factor e) the quadratic model
        # is poor, and the Sinkhorn step, which fixes every column's relative error at once,
        # makes more progress per pass.
        near = np.abs(np.log(col / b)).max(axis=1) <= NEWTON_REGION
        fresh = near & (stale[idx] | ~has_hessian[idx])
        if fresh.any():
            chosen = idx[fresh]
            hessian[chosen] = problem.hessian(chosen, problem.u[chosen], problem.log_v[chosen])
            has_hessian[chosen] = True
            stale[chosen] = False
            evaluations[chosen] += 1
        candidates = np.flatnonzero(near)
        if candidates.size:
            steps, ok = newton_steps(hessian[idx[candidates]], col[candidates], residual[candidates])
            candidates, steps = candidates[ok], steps[ok]
        if candidates.size:
            _line_search(problem, idx, candidates, steps, residual, log_v, col, dual, tol, hessian, stale, accepted)
    sinkhorn = np.flatnonzero(~accepted)
    if sinkhorn.size:
        chosen = idx[sinkhorn]
        stale[chosen] = True
        target = log_v[sinkhorn] + problem.log_b[chosen] - np.log(col[sinkhorn])
        u, new_col, new_dual, ok = problem.row_step(chosen, target)
        if not ok.all():
            # Even the Sinkhorn step left a row without mass in the scaling domain: take it in
            # the log domain instead (rebuild from the absorbed column potential).
            bad = chosen[~ok]
            g[bad] = problem.g0[bad] + target[~ok]
            rebuild[bad] = True
        good = chosen[ok]
        problem.log_v[good] = target[ok]
        problem.u[good] = u[ok]
        problem.col[good] = new_col[ok]
        problem.dual[good] = new_dual[ok]
        moved = np.concatenate([idx[accepted], good])
    else:
        moved = idx[accepted]
    if moved.size:
        lower, upper = problem.log_v_bounds
        highest, lowest = problem.log_v[moved].max(axis=1), problem.log_v[moved].min(axis=1)
        outside = (highest > upper) | (lowest < lower)
        finite = np.all(np.isfinite(problem.col[moved]), axis=1)
        # Scalings that span less than the bounds are moved back inside by a constant shift
        # (the plan does not change: see Problem.shift); only a wider span needs a rebuild.
        shiftable = outside & finite & (highest - lowest <= SHIFTABLE_SPAN * (upper - lower))
        if shiftable.any():
            problem.shift(moved[shiftable], 0.5 * (highest + lowest - upper - lower)[shiftable])
        far = (outside & ~shiftable) | ~finite
        if far.any():
            out = moved[far]
            g[out] = problem.g0[out] + problem.log_v[out]
            rebuild[out] = True


def _line_search(problem, idx, candidates, steps, residual, log_v, col, dual, tol, hessian, stale, accepted):
    """Backtracking Armijo line search on the semi-dual for the problems ``idx[candidates]``."""
    # Half the absorption bound at most, so that one step does not force a rebuild.
    longest = min(MAX_NEWTON_STEP, 0.5 * problem.log_v_bounds[1])
    t = np.minimum(1.0, longest / np.maximum(np.abs(steps).max(axis=1), TINY))
    res = residual[candidates]
    slope = np.einsum("sk,sk->s", res, steps)  # > 0: the step ascends the semi-dual
    residual_norm = np.einsum("sk,sk->s", res, res)
    pending = np.arange(candidates.size)
    for _ in range(MAX_BACKTRACKS):
        if pending.size == 0:
            break
        local = candidates[pending]
        chosen = idx[local]
        trial_log_v = log_v[local] + t[pending, None] * steps[pending]
        u, trial_col, trial_dual, ok = problem.row_step(chosen, trial_log_v)
        trial_residual = problem.b[chosen] - trial_col
        trial_norm = np.einsum("sk,sk->s", trial_residual, trial_residual)
        gain = t[pending] * slope[pending]
        with np.errstate(invalid="ignore"):
            armijo = trial_dual >= dual[local] + 1e-4 * gain
            shrinks = trial_norm < residual_norm[pending]
        good = ok & np.where(gain > ROUNDING_LEVEL, armijo, shrinks)
        if good.any():
            # The Hessian is reused while full steps shrink the residual fast enough; a
            # shortened or slow step asks for a fresh one.
            won = chosen[good]
            contraction = np.sqrt(trial_norm[good] / residual_norm[pending][good])
            remaining = np.abs(trial_residual[good]).sum(axis=1) / np.maximum(tol[won], TINY)
            stale[won] = (t[pending][good] < 1.0) | (contraction > worthwhile_contraction(remaining, problem.K))
            hessian[won] = bfgs_update(
                hessian[won], trial_log_v[good] - log_v[local[good]], trial_col[good] - col[local[good]]
            )
            problem.log_v[won] = trial_log_v[good]
            problem.u[won] = u[good]
            problem.col[won] = trial_col[good]
            problem.dual[won] = trial_dual[good]
            accepted[local[good]] = True
        pending = pending[~good]
        t[pending] *= 0.5
