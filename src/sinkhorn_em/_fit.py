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

from . import _balanced
from ._balanced import sample_blocks

HISTORY_COLUMNS = ["iteration", "epsilon", "objective", "nll", "eot_loss", "sinkhorn_iterations", "seconds"]
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
    sinkhorn_tol: float
    sinkhorn_max_iter: int
    sinkhorn_solver: str
    schedule: np.ndarray
    track_eot_loss: bool
    keep_trajectory: bool
    working_memory: float  # bytes for the (n, K) arrays of a batch
    verbose: int = 0
    verbose_interval: int = 10


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
    nll_total = np.zeros(S) if epsilon != 1.0 else None
    stats = None
    buffer = None
    weights_col = log_weights[:, :, None]
    for cols in sample_blocks(n, S * K):
        width = cols.stop - cols.start
        if buffer is None or buffer.shape[2] != width:
            buffer = np.empty((S, K, width))
        block = design.cost(coefficients, cols, out=buffer)
        if nll_total is not None:
            nll_total += _log_sum_exp_rows(weights_col - block).sum(axis=1)
        if epsilon == 1.0:
            np.negative(block, out=block)
        else:
            block /= -epsilon
        block += weights_col
        top = block.max(axis=1)
        block -= top[:, None, :]
        np.maximum(block, _LOG_FLOOR, out=block)
        np.exp(block, out=block)
        row_sum = block.sum(axis=1)
        total += top.sum(axis=1) + np.log(row_sum).sum(axis=1)
        if statistics:
            block *= (1.0 / row_sum)[:, None, :]
            part = design.statistics(block, cols)
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
    for cols in sample_blocks(design.n, S * K):
        block = design.cost(coefficients, cols)
        np.subtract(log_weights[:, :, None], block, out=block)
        total += _log_sum_exp_rows(block).sum(axis=1)
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


def balanced_pass(design, coefficients, weights, epsilon, warm_g, warm_hessian, options, *, statistics, tol=None):
    """The balanced problem (rows ``1/n``, columns ``weights``) for every start, warm-started.

    Returns the EOT loss, the plan's M-step statistics (``statistics=True``) and, at
    ``eps = 1``, the NLL from the plan (one more product in the last pass).
    """
    S, K = weights.shape
    n = design.n
    a = np.full(n, 1.0 / n)
    source = _balanced.DesignCost(design, coefficients, epsilon)
    store = S * K * n * 8 <= options.working_memory
    problem = _balanced.Problem(source, a, weights, store=store)
    tol = np.full(S, options.sinkhorn_tol) if tol is None else tol
    solution = _balanced.solve(
        problem,
        warm_g,
        tol=tol,
        max_iter=options.sinkhorn_max_iter,
        hessian_init=warm_hessian,
        newton=options.sinkhorn_solver == "newton",
    )
    log_v = solution.log_v
    g = problem.g0 + log_v
    log_weights = np.log(weights)
    # NLL from the plan at eps = 1: with P_ik = exp(f_i + g_k - C_ik),
    # sum_k alpha_k e^{-C_ik} = e^{-f_i} sum_k P_ik alpha_k e^{-g_k}: one more product.
    shift = log_weights - g
    top = shift.max(axis=1)
    from_plan = epsilon == 1.0 and np.ptp(shift, axis=1).max() <= 600.0
    mixture_weights = np.exp(shift - top[:, None]) if from_plan else None
    rows, stats, mixture = problem.finish(
        log_v, statistics=design.scaled_statistics if statistics else None, mixture_weights=mixture_weights
    )
    f = problem.f0 + np.log(problem.u)
    # With log P = f + g - C/eps, <P, C> + eps <P, log P - log a - log b> collapses to the
    # potentials weighted by the plan's marginals (the columns are the weights after the
    # last column half-step).
    value = epsilon * (
        np.einsum("si,si->s", rows, f - np.log(a))
        + np.einsum("sk,sk->s", weights, g - log_weights)
        - (rows.sum(axis=1) - 1.0)
    )
    nll = None
    if from_plan and np.all(mixture > 0):
        nll = np.mean(f - np.log(mixture), axis=1) - top
    errors = np.abs(rows - a).sum(axis=1)
    return BalancedOutcome(
        value=value,
        nll=nll,
        stats=stats,
        g=g,
        hessian=solution.hessian,
        has_hessian=solution.has_hessian,
        n_iter=solution.n_iter,
        converged=errors <= tol,
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
    hessians = np.zeros((S, K, K)) if opts.method == "sinkhorn" or opts.track_eot_loss else None
    has_hessian = np.zeros(S, dtype=bool)
    tracks = [_Track(trajectory=[] if opts.keep_trajectory else None) for _ in range(S)]
    finished: dict[int, tuple] = {}
    active = np.arange(S)
    means, covariances = means.copy(), covariances.copy()
    start = time.perf_counter()
    balanced_tracked = opts.method == "sinkhorn" or opts.track_eot_loss
    for iteration in range(opts.max_iter + 1):
        eps = float(schedule[iteration]) if iteration < schedule.size else float(opts.epsilon)
        coefficients = design.coefficients(means[active], covariances[active])
        log_w = np.log(weights[active])
        count = active.size
        eot = np.full(count, np.nan)
        n_sinkhorn = np.zeros(count, dtype=int)
        solved_ok = np.ones(count, dtype=bool)
        masses = None
        if opts.method == "sinkhorn":
            outcome = balanced_pass(
                design,
                coefficients,
                weights[active],
                eps,
                log_g[active],
                (hessians[active], has_hessian[active]),
                opts,
                statistics=iteration < opts.max_iter,
            )
            stats, objective = outcome.stats, outcome.value
            nll = outcome.nll if outcome.nll is not None else nll_pass(design, coefficients, log_w)
            eot, n_sinkhorn, solved_ok = outcome.value, outcome.n_iter, outcome.converged
            masses = weights[active]
        else:
            stats, objective, nll = em_pass(design, coefficients, log_w, eps, statistics=iteration < opts.max_iter)
            if opts.track_eot_loss:
                outcome = balanced_pass(
                    design,
                    coefficients,
                    weights[active],
                    eps,
                    log_g[active],
                    (hessians[active], has_hessian[active]),
                    opts,
                    statistics=False,
                )
                eot, n_sinkhorn, solved_ok = outcome.value, outcome.n_iter, outcome.converged
        if balanced_tracked:
            log_g[active] = outcome.g
            hessians[active] = outcome.hessian
            has_hessian[active] = outcome.has_hessian
        seconds = time.perf_counter() - start
        keep = np.ones(count, dtype=bool)
        for j, s in enumerate(active):
            track = tracks[s]
            track.failures += not solved_ok[j]
            track.rows.append(
                (iteration, eps, float(objective[j]), float(nll[j]), float(eot[j]), int(n_sinkhorn[j]), seconds)
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
