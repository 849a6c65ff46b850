"""Newton's method on the column potential for a batch of balanced problems (:mod:`._balanced`).

The iterations of :func:`~sinkhorn_em.sinkhorn.sinkhorn_newton`, vectorised over the ``S``
problems of a :class:`~sinkhorn_em._balanced.Problem`: each problem takes its own steps (a
Newton step on the semi-dual with an Armijo line search, or Sinkhorn's column step far from
the solution), keeps its own Hessian (reused with BFGS corrections while it contracts the
residual well enough) and stops at its own tolerance; the problems share only the passes
over the data.

Two situations defeat both kinds of step, and each has its own exact move:

- a *loose group* of columns, which shares almost no sample with the others (near-hard
  assignments: a tight component whose known weight exceeds or falls short of the samples
  near it). The semi-dual is almost flat along the group's common shift until the shift
  reaches the cost gap to the next samples, possibly thousands of nats: Newton's steps are
  capped at ``MAX_NEWTON_STEP`` and Sinkhorn's stall. The group is moved to its own root
  (:func:`_loose_groups`, :meth:`Problem.group_roots`), computed from the costs in the log
  domain, then the iterations go on from there;
- a warm start far worse than the plain start (the potentials of a previous E-step after
  the parameters moved a lot): where the first build is outside the Newton region, the
  fallback start is tried and the one with the larger semi-dual kept
  (:func:`_restart_where_better`).

Neither changes what is solved (the same problem, to the same tolerance), only how many
iterations it takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import lapack
from scipy.sparse import csgraph

from ._numerics import NARROW, TINY, UNDERFLOW

# The quadratic model behind a Newton step is not trusted beyond this change of the column
# log-scaling: longer steps are scaled back to it before the line search.
MAX_NEWTON_STEP = 20.0
# Column log-scalings spanning at most this fraction of the problem's bounds are shifted
# back inside them instead of being absorbed by a rebuild (see Problem.shift).
SHIFTABLE_SPAN = 0.8
MAX_BACKTRACKS = 12
# Columns coupled by less than this fraction of the smaller column mass are treated as
# disconnected when a Newton step is too long (see _loose_groups).
LOOSE_COUPLING = 1e-3
# A loose group is moved to its root only if its mass is off by more than this fraction of
# its target.
LOOSE_RELATIVE_ERROR = 1e-2
# A Sinkhorn step that leaves more than this fraction of the column residual has stalled.
STALLED_CONTRACTION = 0.99
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


def semi_dual(problem, idx):
    """The semi-dual ``<a, f - log a> + <b, g - log b>`` at the problems' iterates (rows exact)."""
    f = problem.f0[idx] + np.log(problem.u[idx])
    g = problem.g0[idx] + problem.log_v[idx]
    return (f - problem.log_a) @ problem.a + np.einsum("sk,sk->s", problem.b[idx], g - problem.log_b[idx])


def _outside_newton_region(problem, idx):
    with np.errstate(divide="ignore"):
        return ~(np.abs(np.log(problem.col[idx] / problem.b[idx])).max(axis=1) <= NEWTON_REGION)


def _restart_where_better(problem, idx, g, fallback, hessian, has_hessian):
    """Start the problems ``idx`` from ``fallback`` where it beats their warm start on the semi-dual.

    A warm start (the previous E-step's potentials) is usually within a few Newton steps of
    the solution, but after a large move of the parameters it can be far worse than the
    plain start: a column potential that dragged far points into a component leaves it
    thousands of nats off for the next costs, and Sinkhorn's steps (about one nat each)
    then exhaust the iteration budget. Only warm starts outside the Newton region are
    compared, so a good warm start costs nothing extra; the semi-dual is concave, so its
    larger value is the start closer to the solution in objective. Returns the problems
    that restarted.
    """
    far = idx[_outside_newton_region(problem, idx)]
    far = far[np.any(fallback[far] != g[far], axis=1)]
    if far.size == 0:
        return far
    warm_value = semi_dual(problem, far)
    warm_g = g[far].copy()
    problem.build(far, fallback[far])
    better = semi_dual(problem, far) > warm_value
    if not better.all():
        problem.build(far[~better], warm_g[~better])
    restarted = far[better]
    g[restarted] = fallback[restarted]
    has_hessian[restarted] = False
    hessian[restarted] = 0.0
    return restarted


def solve(problem, g, *, tol, max_iter, hessian_init=None, newton=True, fallback=None):
    """Run the iterations of every problem of ``problem`` from column potentials ``g`` (``(S, K)``).

    ``tol`` is an array ``(S,)``: problem ``s`` stops when its column residual
    ``||b - P^T 1||_1`` is at most ``tol[s]`` (or after ``max_iter`` iterations); a last
    Sinkhorn column half-step, taken by :meth:`Problem.finish` with the returned
    ``log_v``, then makes its columns exact. ``hessian_init`` is ``None`` or a pair
    ``(hessians (S, K, K), available (S,))``. ``newton=False`` takes only Sinkhorn steps.
    ``fallback`` (``(S, K)`` or ``None``) is a second starting point, tried where the first
    build lands outside the Newton region (see :func:`_restart_where_better`).

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
    progress = _Progress(S)
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
            if fallback is not None and started.size:
                _restart_where_better(problem, started, g, fallback, hessian, has_hessian)
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
            _step(problem, stepping, g, rebuild, tol, hessian, has_hessian, stale, evaluations, newton, progress)
    log_v = problem.log_v.copy()
    regular = ~log_finished
    log_v[regular] += log_b[regular] - np.log(problem.col[regular])
    return Solution(log_v, n_iter, evaluations, hessian, has_hessian, tol, start_residual)


class _Progress:
    """Per-problem residuals that tell a stalled Sinkhorn phase (see :func:`_stalled`)."""

    def __init__(self, S):
        self.last = np.full(S, np.inf)  # the column residual at the previous step
        self.checked = np.full(S, np.inf)  # the residual at the last search for loose groups


def _stalled(progress, idx, residual, far):
    """Problems in Sinkhorn's phase whose last step hardly shrank the residual, not checked at this level.

    Sinkhorn's column step fixes each column's relative error assuming its mass scales
    with its potential; a loose group's mass does not move until its potential has moved
    by the cost gap to the next samples, so its steps stall. A stall is checked for loose
    groups once per halving of the residual, so a slow but loose-free problem pays for few
    Hessians.
    """
    l1 = np.abs(residual).sum(axis=1)
    stalled = far & (l1 > STALLED_CONTRACTION * progress.last[idx]) & (l1 < 0.5 * progress.checked[idx])
    progress.last[idx] = l1
    progress.checked[idx[stalled]] = l1[stalled]
    return stalled


def _step(problem, idx, g, rebuild, tol, hessian, has_hessian, stale, evaluations, newton, progress):
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
        near = ~_outside_newton_region(problem, idx)
        fresh = near & (stale[idx] | ~has_hessian[idx])
        stalled = _stalled(progress, idx, residual, ~near)
        fresh |= stalled
        if fresh.any():
            chosen = idx[fresh]
            hessian[chosen] = problem.hessian(chosen, problem.u[chosen], problem.log_v[chosen])
            has_hessian[chosen] = True
            stale[chosen] = False
            evaluations[chosen] += 1
        candidates = np.flatnonzero(near | stalled)
        if candidates.size:
            steps, ok = newton_steps(hessian[idx[candidates]], col[candidates], residual[candidates])
            candidates, steps = candidates[ok], steps[ok]
        if candidates.size:
            longest = _longest_step(problem)
            groups = [
                _loose_groups(hessian[idx[c]], step, col[c], residual[c], longest) for c, step in zip(candidates, steps)
            ]
            rooted = np.array([len(masks) > 0 for masks in groups])
            if rooted.any():
                chosen = idx[candidates[rooted]]
                _take_group_roots(problem, chosen, [m for m in groups if m], g, rebuild, stale)
                accepted[candidates[rooted]] = True
                candidates, steps = candidates[~rooted], steps[~rooted]
            # A stalled problem without loose groups goes on with Sinkhorn's step.
            keep = near[candidates]
            candidates, steps = candidates[keep], steps[keep]
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


def _longest_step(problem):
    # Half the absorption bound at most, so that one step does not force a rebuild.
    return min(MAX_NEWTON_STEP, 0.5 * problem.log_v_bounds[1])


def _loose_groups(hessian, step, col, residual, longest):
    """The groups of columns to move to their own roots: masks (possibly none).

    A Newton step longer than the quadratic model is trusted for (``longest``, see
    :func:`_longest_step`) runs along a near-null direction of the Laplacian: a group of columns joined to the
    others only by a vanishing share of samples. The groups are the connected components
    of the columns' couplings ``W_kl`` (the Hessian's off-diagonal) above ``LOOSE_COUPLING``
    times the smaller column mass ``col``; every group but the largest that holds a column with an over-long step, and whose mass
    is off its target, is returned.
    """
    long = np.abs(step) > longest
    if not long.any():
        return []
    coupling = np.maximum(-hessian, 0.0)
    np.fill_diagonal(coupling, 0.0)
    strong = coupling > LOOSE_COUPLING * np.minimum.outer(col, col)
    count, labels = csgraph.connected_components(sparse.csr_matrix(strong), directed=False)
    if count == 1:
        return []
    largest = np.argmax(np.bincount(labels))
    # A group already at its own mass has no root to move to: the long step comes from
    # residuals elsewhere routed through its weak links, and the line search takes it.
    error = np.abs(np.bincount(labels, weights=residual, minlength=count))
    worth = error > LOOSE_RELATIVE_ERROR * np.bincount(labels, weights=col + residual, minlength=count)
    return [labels == c for c in np.unique(labels[long]) if c != largest and worth[c]]


def _take_group_roots(problem, chosen, groups, g, rebuild, stale):
    """Move each loose group of columns to its own root (:meth:`Problem.group_roots`); rebuild there."""
    f = problem.f0[chosen] + np.log(problem.u[chosen])
    current = problem.g0[chosen] + problem.log_v[chosen]
    g[chosen] = current + problem.group_roots(chosen, groups, f, current)
    rebuild[chosen] = True
    stale[chosen] = True


def _line_search(problem, idx, candidates, steps, residual, log_v, col, dual, tol, hessian, stale, accepted):
    """Backtracking Armijo line search on the semi-dual for the problems ``idx[candidates]``."""
    longest = _longest_step(problem)
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
