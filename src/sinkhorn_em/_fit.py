"""The fit loop of :class:`~sinkhorn_em.mixture.EOTGaussianMixture`, for a batch of starts at once.

One iteration of every method is one pass over the data block by block (EM, oEM) or a
balanced solve plus its last pass (Sinkhorn-EM); the pass computes the costs of a block
(one product with the moment features, :mod:`._design`), the coupling's block, the
objective's terms and the block's M-step statistics (one more product) while the block is
in cache. Nothing of size ``n x K`` is kept, except the Sinkhorn-EM kernel when it fits the
memory budget (:mod:`._balanced`).

A batch fits ``S`` starts with the same data and options. Starts share the passes, not
their arithmetic: each start's iterates are those it would have alone. A start leaves the
batch when it converges.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import _balanced, _newton
from ._balanced import sample_blocks

HISTORY_COLUMNS = [
    "iteration",
    "epsilon",
    "objective",
    "nll",
    "eot_loss",
    "sinkhorn_iterations",
    "seconds",
    "sinkhorn_tol",
]
# sinkhorn_tol="auto": each E-step shrinks the column residual it starts from (the change of
# the plan's masses that the last M-step caused) by the factor AUTO_RELATIVE, and at least to
# AUTO_FINAL_TOL; once two inexact E-steps' objectives differ by less than the convergence
# threshold, every E-step is solved to AUTO_FINAL_TOL, and only two such E-steps decide
# convergence. (Exact E-steps as soon as the change came within 10x the threshold cost
# 30% more CPU over a whole K = 195 fit for no difference in the result.)
AUTO_FINAL_TOL = 1e-9
AUTO_RELATIVE = 0.1
AUTO_MAX_ITER = 10**9
# Inexact E-steps with sampled Hessians whose previous E-step started far from balance (and
# the first one of a fit) are solved on the sample of the rows their Hessians use first
# (1 / r of the work per pass), and the full solve starts from that solution: it is then
# off only by the sample's error. Only where that sample starts with a column residual of
# at least COARSE_MIN_RESIDUAL, about twice the L1 sampling error of the column masses
# with 32 samples per component (~0.8 / sqrt(32)): nearer balance the sampling error
# would be most of what the full solve has to correct.
COARSE_MIN_RESIDUAL = 0.3
# Inexact E-steps whose tolerance is at least this (predicted from the start's last E-step)
# store their kernel in single precision when there are at least SINGLE_MIN_COMPONENTS
# components: column masses from it carry relative errors of ~1e-7 (products accumulate in
# single precision within blocks of at most 2048 samples), far below such a tolerance, and
# every pass over it moves half the bytes. Few components gain nothing (their passes cost
# little next to the fixed overhead of an iteration).
SINGLE_MIN_TOL = 1e-5
SINGLE_MIN_COMPONENTS = 32
# Responsibilities below exp(-600) times a sample's largest are stored as exp(-600): an
# exponential or a product that underflows to a subnormal number costs ~100x a normal one,
# and such a weight changes no sum by more than 1e-250 relative.
_LOG_FLOOR = -600.0


@dataclass(frozen=True)
class Options:
    method: str
    covariance_type: str
    epsilon: float
    tol: float
    max_iter: int
    reg_covar: float
    sinkhorn_tol: float  # the tolerance of every E-step, or the final one with sinkhorn_auto
    sinkhorn_max_iter: int
    sinkhorn_solver: str
    schedule: np.ndarray
    track_eot_loss: bool
    keep_trajectory: bool
    working_memory: float  # bytes for the (n, K) arrays of a batch
    verbose: int = 0
    verbose_interval: int = 10
    sinkhorn_auto: bool = False


@dataclass
class Run:
    """Outcome of one start."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    objective: float
    converged: bool
    n_iter: int
    history: pd.DataFrame
    trajectory: list | None
    sinkhorn_failures: int


@dataclass
class _Track:
    """Bookkeeping of one start while it runs."""

    rows: list = field(default_factory=list)
    trajectory: list | None = None
    previous: float = np.inf
    failures: int = 0
    change: float = np.inf  # the objective's last change
    last_tol: float = np.inf  # the previous E-step's tolerance
    exact: bool = False  # sinkhorn_auto: every E-step from now on at the final tolerance
    coarse: bool = True  # the next inexact E-step looks at a sample of the rows first (_coarse_start)


def _e_step_relative_tolerance(track, options):
    """How much a start's next balanced E-step must shrink its starting residual (0: solve to sinkhorn_tol)."""
    if not options.sinkhorn_auto or track.exact:
        return 0.0
    return AUTO_RELATIVE


# ---------------------------------------------------------------------- passes
def em_pass(design, coefficients, log_weights, epsilon, *, statistics=True):
    """One EM E-step and the M-step statistics of its responsibilities, block by block.

    Returns ``(stats, objective, nll)`` per start: ``stats`` (``(S, K, p)``) are the moment
    sums of the responsibilities (rows summing to 1), ``objective`` the semi-relaxed value
    ``-eps mean_i log sum_k alpha_k e^{-C_ik / eps}`` and ``nll`` the same at ``eps = 1``.
    """
    S, K = log_weights.shape
    n = design.n
    total = np.zeros(S)
    # log alpha_k - C_ik / eps is one product with the features.
    log_joint = design.log_kernel_coefficients(coefficients, log_weights, 1.0 / epsilon)
    log_joint_1 = None if epsilon == 1.0 else design.log_kernel_coefficients(coefficients, log_weights, 1.0)
    nll_total = None if log_joint_1 is None else np.zeros(S)
    stats = None
    buffers = {}
    for cols in sample_blocks(n, S * K):
        width = cols.stop - cols.start
        buffer = buffers.get(width)
        if buffer is None:
            buffer = buffers[width] = np.empty((S, K, width))
        if log_joint_1 is not None:
            nll_total += _log_sum_exp_rows(design.log_kernel(log_joint_1, cols, out=buffer)).sum(axis=1)
        block = design.log_kernel(log_joint, cols, out=buffer)
        top = block.max(axis=1)
        block -= top[:, None, :]
        np.maximum(block, _LOG_FLOOR, out=block)
        np.exp(block, out=block)
        row_sum = block.sum(axis=1)
        total += top.sum(axis=1) + np.log(row_sum).sum(axis=1)
        if statistics:
            part = design.scaled_statistics(block, 1.0 / row_sum, None, cols)
            stats = part if stats is None else stats + part
    objective = -epsilon * total / n
    nll = objective.copy() if nll_total is None else -nll_total / n
    return stats, objective, nll


def _log_sum_exp_rows(block):
    """``log sum_k exp(block[s, k, i])`` for every start and sample, ``(S, B)``."""
    top = block.max(axis=1)
    return top + np.log(np.exp(block - top[:, None, :]).sum(axis=1))


def nll_pass(design, coefficients, log_weights):
    """``-mean_i log sum_k alpha_k N(x_i; theta_k)`` per start (one pass of exponentials)."""
    S, K = log_weights.shape
    total = np.zeros(S)
    log_joint = design.log_kernel_coefficients(coefficients, log_weights, 1.0)
    for cols in sample_blocks(design.n, S * K):
        total += _log_sum_exp_rows(design.log_kernel(log_joint, cols)).sum(axis=1)
    return -total / design.n


@dataclass
class BalancedOutcome:
    value: np.ndarray
    nll: np.ndarray | None
    stats: np.ndarray | None
    g: np.ndarray
    hessian: np.ndarray
    has_hessian: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    tol: np.ndarray
    start_residual: np.ndarray


def _coarse_start(
    design, coefficients, weights, epsilon, warm, options, *, coarse, step, tol, relative, workspace, dtype
):
    """Solve the problems ``coarse`` on every ``step``-th sample first, where that sample is far from balance.

    ``warm`` is ``(g, hessians, has_hessian)``. Returns the full solve's starting point
    ``(g, hessians, has_hessian)``, its ``tol`` and ``relative``, and per problem the
    residual it started from and its iterations on the sample (NaN and 0 where it was not
    solved there), or ``None`` when no problem was far enough from balance.
    """
    sub_design = design.every(step)
    a = np.full(sub_design.n, 1.0 / sub_design.n)

    def sampled_problem(idx):
        problem = _balanced.Problem(
            _balanced.DesignCost(sub_design, tuple(c[idx] for c in coefficients), epsilon),
            a,
            weights[idx],
            store=idx.size * weights.shape[1] * sub_design.n * np.dtype(dtype).itemsize <= options.working_memory,
            workspace=None if workspace is None else workspace.setdefault(("coarse",), {}),
            dtype=dtype,
            sampled_hessian=False,
        )
        problem.build(np.arange(idx.size), warm[0][idx])
        return problem

    chosen = np.flatnonzero(coarse)
    sub = sampled_problem(chosen)
    # Near balance the sample's own imbalance (the sampling error of its column masses)
    # would dominate what the full solve starts from: those problems start as usual.
    far = np.abs(sub.b - sub.col).sum(axis=1) >= COARSE_MIN_RESIDUAL
    if not far.any():
        return None
    if not far.all():
        chosen = chosen[far]
        sub = sampled_problem(chosen)
    solution = _newton.solve(
        sub,
        warm[0][chosen],
        tol=tol[chosen],
        max_iter=options.sinkhorn_max_iter,
        hessian_init=(warm[1][chosen], warm[2][chosen]),
        newton=options.sinkhorn_solver == "newton",
        relative=relative[chosen],
        built=True,
    )
    g, hessians, has_hessian = (np.array(x) for x in warm)
    g[chosen] = sub.g0 + solution.log_v
    hessians[chosen] = solution.hessian
    has_hessian[chosen] = solution.has_hessian
    tol, relative = tol.copy(), relative.copy()
    # The full solve is held to the tolerance the sample's starting residual gave.
    tol[chosen] = solution.tol
    relative[chosen] = 0.0
    start_residual = np.full(len(coarse), np.nan)
    start_residual[chosen] = solution.start_residual
    iterations = np.zeros(len(coarse), dtype=int)
    iterations[chosen] = solution.n_iter
    return g, hessians, has_hessian, tol, relative, start_residual, iterations


def balanced_pass(
    design,
    coefficients,
    weights,
    epsilon,
    warm_g,
    warm_hessian,
    options,
    *,
    statistics,
    relative=None,
    workspace=None,
    dtype=np.float64,
    coarse=None,
):
    """The balanced problem (rows ``1/n``, columns ``weights``) for every start, warm-started.

    Returns the EOT loss, the plan's M-step statistics (``statistics=True``) and, at
    ``eps = 1``, the NLL from the plan (one more product in the last pass). ``relative``:
    see :func:`._newton.solve`.

    The EOT loss is the semi-dual value at the solver's last iterate (rows exact): a lower
    bound of the loss whose error is quadratic in the column residual, so that an inexact
    solve (``relative``) still reports the loss to far below its own tolerance.
    """
    S, K = weights.shape
    n = design.n
    a = np.full(n, 1.0 / n)
    source = _balanced.DesignCost(design, coefficients, epsilon)
    store = S * K * n * np.dtype(dtype).itemsize <= options.working_memory
    # Inexact E-steps with many components estimate their Hessians from a sample of the rows
    # (a Gram product costs K^2 per row, a pass K): see _balanced.HESSIAN_SAMPLES_PER_COMPONENT.
    inexact = relative is not None and bool(np.all(relative > 0))
    problem = _balanced.Problem(
        source,
        a,
        weights,
        store=store,
        workspace=workspace,
        dtype=dtype,
        sampled_hessian=inexact and K >= SINGLE_MIN_COMPONENTS,
    )
    log_weights = np.log(weights)
    if epsilon == 1.0:
        problem.track_mixture(log_weights)
    tol = np.full(S, max(options.sinkhorn_tol, SINGLE_MIN_TOL) if dtype == np.float32 else options.sinkhorn_tol)
    started = None
    if coarse is not None and problem.hessian_stride > 1 and np.any(coarse):
        started = _coarse_start(
            design,
            coefficients,
            weights,
            epsilon,
            (warm_g, *warm_hessian),
            options,
            coarse=coarse,
            step=problem.hessian_stride,
            tol=tol,
            relative=relative,
            workspace=workspace,
            dtype=dtype,
        )
        if started is not None:
            warm_g, hessians, has_hessian, tol, relative, start_residual, coarse_iterations = started
            warm_hessian = (hessians, has_hessian)
    solution = _newton.solve(
        problem,
        warm_g,
        tol=tol,
        max_iter=options.sinkhorn_max_iter,
        hessian_init=warm_hessian,
        newton=options.sinkhorn_solver == "newton",
        relative=relative,
    )
    if started is not None:
        # A coarse start's residual and iterations (on the sample) are part of the E-step's.
        solution.start_residual = np.where(np.isnan(start_residual), solution.start_residual, start_residual)
        solution.n_iter = solution.n_iter + coarse_iterations
    # The semi-dual <a, f - log a> + <b, g - log b> at the last iterate (rows exact).
    f_last = problem.f0 + np.log(problem.u)
    value = epsilon * (
        (f_last - np.log(a)) @ a + np.einsum("sk,sk->s", weights, problem.g0 + problem.log_v - log_weights)
    )
    log_v = solution.log_v
    g = problem.g0 + log_v
    rows, stats = problem.finish(log_v, statistics=design.scaled_statistics if statistics else None)
    nll = None
    if epsilon == 1.0 and problem.has_log_mixture.all():
        nll = -problem.log_mixture.mean(axis=1)
    errors = np.abs(rows - a).sum(axis=1)
    return BalancedOutcome(
        start_residual=solution.start_residual,
        value=value,
        nll=nll,
        stats=stats,
        g=g,
        hessian=solution.hessian,
        has_hessian=solution.has_hessian,
        n_iter=solution.n_iter,
        converged=errors <= solution.tol,
        tol=solution.tol,
    )


# ---------------------------------------------------------------------- the loop
def run(design, alpha, means, covariances, options, *, out=print):
    """Fit every start ``(means[s], covariances[s])``; a list of :class:`Run`.

    ``means`` has shape ``(S, K, d)`` and ``covariances`` the layout of the covariance type
    with a leading axis ``S``.
    """
    S, K = means.shape[:2]
    opts = options
    schedule = opts.schedule
    weights = np.broadcast_to(alpha, (S, K)).copy()
    log_g = np.broadcast_to(np.log(alpha), (S, K)).copy()  # balanced warm start
    balanced_tracked = opts.method == "sinkhorn" or opts.track_eot_loss
    hessians = np.zeros((S, K, K)) if balanced_tracked else None
    has_hessian = np.zeros(S, dtype=bool)
    tracks = [_Track(trajectory=[] if opts.keep_trajectory else None) for _ in range(S)]
    finished: dict[int, tuple] = {}
    active = np.arange(S)
    means, covariances = means.copy(), covariances.copy()
    start = time.perf_counter()
    workspace = {}  # the balanced solves' kernel and work arrays, reused from one iteration to the next
    for iteration in range(opts.max_iter + 1):
        eps = float(schedule[iteration]) if iteration < schedule.size else float(opts.epsilon)
        coefficients = design.coefficients(means[active], covariances[active])
        log_w = np.log(weights[active])
        count = active.size
        eot = np.full(count, np.nan)
        n_sinkhorn = np.zeros(count, dtype=int)
        solved_ok = np.ones(count, dtype=bool)
        masses = None
        relative = np.array([_e_step_relative_tolerance(tracks[s], opts) for s in active])
        tolerances = np.full(count, opts.sinkhorn_tol)
        single = (
            K >= SINGLE_MIN_COMPONENTS
            and bool(np.all(relative > 0))
            and all(tracks[s].last_tol >= SINGLE_MIN_TOL for s in active)
        )
        e_step = opts.method == "sinkhorn"
        if not e_step:
            stats, objective, nll = em_pass(design, coefficients, log_w, eps, statistics=iteration < opts.max_iter)
        if balanced_tracked:
            # The Sinkhorn-EM E-step, or for em/oem with track_eot_loss the EOT loss alone
            # (an exact solve, no M-step statistics).
            outcome = balanced_pass(
                design,
                coefficients,
                weights[active],
                eps,
                log_g[active],
                (hessians[active], has_hessian[active]),
                opts,
                statistics=e_step and iteration < opts.max_iter,
                relative=relative if e_step else None,
                workspace=workspace,
                dtype=np.float32 if e_step and single else np.float64,
                coarse=np.array([tracks[s].coarse for s in active]) & (relative > 0) if e_step else None,
            )
            eot, n_sinkhorn, solved_ok = outcome.value, outcome.n_iter, outcome.converged
            log_g[active] = outcome.g
            if e_step:
                for j, s in enumerate(active):
                    tracks[s].coarse = bool(outcome.start_residual[j] >= COARSE_MIN_RESIDUAL)
            hessians[active] = outcome.hessian
            has_hessian[active] = outcome.has_hessian
        if e_step:
            tolerances = outcome.tol
            stats, objective = outcome.stats, outcome.value
            nll = outcome.nll if outcome.nll is not None else nll_pass(design, coefficients, log_w)
            masses = weights[active]
        seconds = time.perf_counter() - start
        keep = np.ones(count, dtype=bool)
        for j, s in enumerate(active):
            track = tracks[s]
            track.failures += not solved_ok[j]
            track.rows.append(
                (
                    iteration,
                    eps,
                    float(objective[j]),
                    float(nll[j]),
                    float(eot[j]),
                    int(n_sinkhorn[j]),
                    seconds,
                    float(tolerances[j]) if balanced_tracked else np.nan,
                )
            )
            if track.trajectory is not None:
                track.trajectory.append(
                    {"weights": weights[s].copy(), "means": means[s].copy(), "covariances": covariances[s].copy()}
                )
            change = track.previous - objective[j]
            if opts.verbose >= 2 and iteration % opts.verbose_interval == 0:
                label = f"start {s} " if S > 1 else ""
                out(
                    f"  {label}iteration {iteration:4d}  objective {objective[j]:.10g}  change {change:.3e}  "
                    f"{seconds:8.3f} s  balanced-solver iterations {int(n_sinkhorn[j])}"
                )
            # Objectives at different epsilons are not comparable: test only after the schedule.
            converged = iteration > schedule.size and abs(change) < opts.tol
            if converged and opts.method == "sinkhorn" and max(tolerances[j], track.last_tol) > opts.sinkhorn_tol:
                # sinkhorn_tol="auto": the change of two inexact objectives does not decide;
                # go on with E-steps at the final tolerance.
                converged, track.exact = False, True
            track.change, track.last_tol = change, tolerances[j]
            if converged or iteration == opts.max_iter:
                finished[s] = (bool(converged), iteration, float(objective[j]))
                keep[j] = False
                if opts.verbose >= 1:
                    label = f"Start {s}" if S > 1 else "Fit"
                    state = "converged" if converged else "did not converge"
                    out(f"{label} {state} after {iteration} iterations: objective {objective[j]:.10g}, {seconds:.3f} s")
            track.previous = float(objective[j])
        if not keep.any():
            break
        going = active[keep]
        nk, new_means, new_covariances = design.parameters(
            stats[keep], opts.reg_covar, masses=None if masses is None else masses[keep]
        )
        means[going] = new_means
        covariances[going] = new_covariances
        if opts.method == "oem":
            weights[going] = nk / nk.sum(axis=1, keepdims=True)
        active = going
    runs = []
    for s in range(S):
        converged, n_iter, objective = finished[s]
        track = tracks[s]
        runs.append(
            Run(
                weights[s].copy(),
                means[s].copy(),
                covariances[s].copy(),
                objective,
                converged,
                n_iter,
                pd.DataFrame(track.rows, columns=HISTORY_COLUMNS),
                track.trajectory,
                track.failures,
            )
        )
    return runs


# Starts of one fit (n_init, fit_many) share their passes over the data while the batch's
# (n, K) arrays hold at most this many entries: batching saves per-iteration overhead,
# which only matters for small problems.
_BATCH_ENTRIES = 1 << 20


def covariances_around(design, X, means, reg_covar):
    """Covariances of the points nearest to each initial mean (pooled when too few), block by block."""
    K = means.shape[0]
    stats, counts, pooled = None, np.zeros(K), None
    squared_means = np.einsum("kd,kd->k", means, means)
    for cols in sample_blocks(X.shape[0], K):
        block = X[cols]
        labels = (squared_means[None, :] - 2.0 * block @ means.T).argmin(axis=1)
        hard = np.zeros((1, K, block.shape[0]))
        hard[0, labels, np.arange(block.shape[0])] = 1.0
        counts += np.bincount(labels, minlength=K)
        part = design.statistics(hard, cols)
        stats = part if stats is None else stats + part
        ones = design.statistics(np.ones((1, 1, block.shape[0])), cols)
        pooled = ones if pooled is None else pooled + ones
    covariances = design.parameters(stats, reg_covar)[2][0]
    sparse = counts < 2
    if np.any(sparse) and design.covariance_type != "tied":
        covariances[sparse] = design.parameters(pooled, reg_covar)[2][0, 0]
    return covariances


def _batches(count, n, K, options):
    """Consecutive groups of starts that share their passes (see ``_BATCH_ENTRIES``)."""
    per_start = n * K
    size = max(1, min(_BATCH_ENTRIES // per_start, int(options.working_memory // (8 * per_start))))
    return [range(first, min(first + size, count)) for first in range(0, count, size)]


def run_starts(design, alpha, starts, options):
    """Fit every start ``(means, covariances)`` in batches of :func:`run`; one :class:`Run` per start."""
    K = starts[0][0].shape[0]
    runs = []
    for batch in _batches(len(starts), design.n, K, options):
        means = np.stack([starts[s][0] for s in batch])
        covariances = np.stack([starts[s][1] for s in batch])
        runs += run(design, alpha, means, covariances, options)
    return runs
