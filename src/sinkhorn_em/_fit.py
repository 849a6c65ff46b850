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
from ._numerics import TINY, exp_below_row_max
from ._parallel import SERIAL, Workers

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


@dataclass(frozen=True)
class Options:
    method: str
    covariance_type: str
    epsilon: float
    tol: float
    max_iter: int
    reg_covar: float
    sinkhorn_tol: float  # the column-marginal tolerance of every balanced solve
    sinkhorn_max_iter: int
    sinkhorn_solver: str
    schedule: np.ndarray
    track_eot_loss: bool
    keep_trajectory: bool
    working_memory: float  # bytes for the (n, K) arrays of a batch
    verbose: int = 0
    verbose_interval: int = 10
    n_jobs: int = 1  # threads of the block passes (checked: >= 1); results do not depend on it


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
    sinkhorn_failures: int  # balanced solves that stopped at sinkhorn_max_iter
    largest_rise: float = 0.0  # largest relative increase of the objective between iterations


@dataclass
class _Track:
    """Bookkeeping of one start while it runs."""

    rows: list = field(default_factory=list)
    trajectory: list | None = None
    previous: float = np.inf
    previous_solved: bool = True  # the last E-step reached its tolerance
    failures: int = 0
    largest_rise: float = 0.0


# ---------------------------------------------------------------------- passes
def em_pass(design, coefficients, log_weights, epsilon, *, statistics=True, workers=SERIAL):
    """One EM E-step and the M-step statistics of its responsibilities, block by block.

    Returns ``(stats, objective, nll)`` per start: ``stats`` (``(S, K, p)``) are the moment
    sums of the responsibilities (rows summing to 1), ``objective`` the semi-relaxed value
    ``-eps mean_i log sum_k alpha_k e^{-C_ik / eps}`` and ``nll`` the same at ``eps = 1``.
    The blocks run on ``workers`` (:class:`._parallel.Workers`); their sums are added in
    block order whatever the number of threads.
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

    def one(b, cols):
        buffer = workers.scratch(buffers, "block", (S, K, cols.stop - cols.start))
        return em_block(design, log_joint, log_joint_1, cols, statistics, buffer)

    for nll_part, total_part, part in workers.map(one, sample_blocks(n, S * K)):
        if nll_part is not None:
            nll_total += nll_part
        total += total_part
        if statistics:
            stats = part if stats is None else stats + part
    objective = -epsilon * total / n
    nll = objective.copy() if nll_total is None else -nll_total / n
    return stats, objective, nll


def em_block(design, log_joint, log_joint_1, cols, statistics, out=None):
    """The terms of :func:`em_pass` for the samples ``cols``: ``(nll_part, total_part, stats_part)``.

    ``total_part[s] = sum_i log sum_k exp(log_joint[s, k, i])`` over the block (``log_joint``
    prepared with ``log_kernel_coefficients``), ``nll_part`` the same for ``log_joint_1``
    (None without it), ``stats_part`` the moment sums of the responsibilities (rows of
    ``exp(log_joint)`` normalised to 1; None unless ``statistics``). ``out`` is a scratch
    array ``(S, K, B)`` (both kernels are written to it in turn). Shared with the Dask
    backend's chunk pass (:mod:`._dask`).
    """
    nll_part = None
    if log_joint_1 is not None:
        nll_part = _log_sum_exp_rows(design.log_kernel(log_joint_1, cols, out=out)).sum(axis=1)
    block = design.log_kernel(log_joint, cols, out=out)
    top = exp_below_row_max(block)
    row_sum = block.sum(axis=1)
    total_part = top.sum(axis=1) + np.log(row_sum).sum(axis=1)
    stats_part = design.scaled_statistics(block, 1.0 / row_sum, None, cols) if statistics else None
    return nll_part, total_part, stats_part


def _log_sum_exp_rows(block):
    """``log sum_k exp(block[s, k, i])`` for every start and sample, ``(S, B)``."""
    top = block.max(axis=1)
    return top + np.log(np.exp(block - top[:, None, :]).sum(axis=1))


def nll_pass(design, coefficients, log_weights, workers=SERIAL):
    """``-mean_i log sum_k alpha_k N(x_i; theta_k)`` per start (one pass of exponentials)."""
    S, K = log_weights.shape
    total = np.zeros(S)
    log_joint = design.log_kernel_coefficients(coefficients, log_weights, 1.0)

    def one(b, cols):
        return _log_sum_exp_rows(design.log_kernel(log_joint, cols)).sum(axis=1)

    for part in workers.map(one, sample_blocks(design.n, S * K)):
        total += part
    return -total / design.n


# ---------------------------------------------------------------------- E-steps
@dataclass
class EStepResult:
    """One E-step of the active starts (arrays with a leading axis over them)."""

    stats: np.ndarray | None  # the plan's M-step moment sums, (S, K, p)
    objective: np.ndarray  # the objective at the parameters of the E-step
    nll: np.ndarray  # -mean_i log sum_k alpha_k N(x_i; theta_k)
    n_iter: np.ndarray  # iterations of the balanced solver (0 for row-normalised E-steps)
    solved: np.ndarray  # reached its tolerance (always for row-normalised E-steps)
    tol: np.ndarray  # the marginal tolerance of the balanced solve (NaN without one)


class RowNormalisedEStep:
    r"""The E-step of EM and oEM: :math:`P_{ik} \propto \alpha_k e^{-C_{ik}/\varepsilon}`, rows summing to 1/n.

    Closed form, one pass; its objective is the semi-relaxed value
    :math:`-\varepsilon\,\frac1n\sum_i \log\sum_k \alpha_k e^{-C_{ik}/\varepsilon}`.
    """

    balanced = False

    def __init__(self, workers=SERIAL):
        self.workers = workers

    def solve(self, design, coefficients, weights, epsilon, active, *, statistics):
        stats, objective, nll = em_pass(
            design, coefficients, np.log(weights), epsilon, statistics=statistics, workers=self.workers
        )
        count = active.size
        return EStepResult(
            stats, objective, nll, np.zeros(count, dtype=int), np.ones(count, dtype=bool), np.full(count, np.nan)
        )


class BalancedEStep:
    r"""The E-step of Sinkhorn-EM: the entropic plan with rows 1/n and columns :math:`\alpha`.

    .. math:: P^\star = \arg\min_{P \in \Pi(1/n, \alpha)} \langle P, C_\theta \rangle
              + \varepsilon\,\mathrm{KL}(P \,\|\, (1/n) \otimes \alpha)

    solved by :func:`._newton.solve` (Newton steps on the ``K``-dimensional column potential,
    Sinkhorn's row update) until the column marginal's L1 error is at most ``tol``; a last
    Sinkhorn column step then makes the columns exact. Every E-step is held to the same
    ``tol``: this object is the whole accuracy policy of the fit. The column potential and
    the Newton Hessian of each start warm-start its next E-step; they change the cost of a
    solve, never its result beyond ``tol``.

    The objective is the semi-dual value at the solver's last iterate (rows exact), a lower
    bound of the EOT loss whose error is quadratic in the column residual.
    """

    balanced = True

    def __init__(self, alpha, n_starts, *, tol, max_iter, newton, working_memory, workers=SERIAL):
        K = alpha.size
        self.workers = workers
        self.tol, self.max_iter, self.newton, self.working_memory = (
            float(tol),
            int(max_iter),
            bool(newton),
            working_memory,
        )
        self.log_g = np.broadcast_to(np.log(alpha), (n_starts, K)).copy()
        self.hessians = np.zeros((n_starts, K, K))
        self.has_hessian = np.zeros(n_starts, dtype=bool)
        self.workspace = {}  # the kernel and work arrays, reused from one E-step to the next

    def solve(self, design, coefficients, weights, epsilon, active, *, statistics):
        count, K = weights.shape
        n = design.n
        a = np.full(n, 1.0 / n)
        problem = _balanced.Problem(
            _balanced.DesignCost(design, coefficients, epsilon),
            a,
            weights,
            store=count * K * n * 8 <= self.working_memory,
            workspace=self.workspace,
            workers=self.workers,
        )
        log_weights = np.log(weights)
        if epsilon == 1.0:
            problem.track_mixture(log_weights)
        solution = _newton.solve(
            problem,
            self.log_g[active],
            tol=np.full(count, self.tol),
            max_iter=self.max_iter,
            hessian_init=(self.hessians[active], self.has_hessian[active]),
            newton=self.newton,
            fallback=np.broadcast_to(log_weights, (count, K)),
        )
        value = epsilon * _newton.semi_dual(problem, np.arange(count))
        self.log_g[active] = problem.g0 + solution.log_v
        self.hessians[active] = solution.hessian
        self.has_hessian[active] = solution.has_hessian
        rows, stats = problem.finish(solution.log_v, statistics=design.scaled_statistics if statistics else None)
        if epsilon == 1.0 and problem.has_log_mixture.all():
            nll = -problem.log_mixture.mean(axis=1)
        else:
            nll = nll_pass(design, coefficients, log_weights, self.workers)
        solved = np.abs(rows - a).sum(axis=1) <= self.tol
        return EStepResult(stats, value, nll, solution.n_iter, solved, np.full(count, self.tol))


def e_steps(design):
    """The E-step constructors ``(row_normalised(workers), balanced(alpha, n_starts, **options))`` of ``design``.

    The in-memory ones (:class:`RowNormalisedEStep`, :class:`BalancedEStep`) unless the
    design brings its own (``design.e_steps``: the Dask backend, :mod:`._dask`); the loop
    :func:`run` is the same for both.
    """
    return getattr(design, "e_steps", (RowNormalisedEStep, BalancedEStep))


# ---------------------------------------------------------------------- the loop
def run(design, alpha, means, covariances, options, *, out=print):
    """Fit every start ``(means[s], covariances[s])``; a list of :class:`Run`.

    ``means`` has shape ``(S, K, d)`` and ``covariances`` the layout of the covariance type
    with a leading axis ``S``. Each iteration is an E-step at the current parameters (whose
    objective is recorded for them), the convergence test on the change of that objective,
    and an M-step, as scikit-learn's ``BaseMixture.fit_predict``. The passes over the data
    run on ``options.n_jobs`` threads (one pool for the whole fit), with the same results.
    """
    with Workers(options.n_jobs) as workers:
        return _run(design, alpha, means, covariances, options, out, workers)


def _run(design, alpha, means, covariances, options, out, workers):
    S, K = means.shape[:2]
    opts = options
    schedule = opts.schedule
    weights = np.broadcast_to(alpha, (S, K)).copy()

    row_normalised, balanced = e_steps(design)

    def balanced_step():
        return balanced(
            alpha,
            S,
            tol=opts.sinkhorn_tol,
            max_iter=opts.sinkhorn_max_iter,
            newton=opts.sinkhorn_solver == "newton",
            working_memory=opts.working_memory,
            workers=workers,
        )

    e_step = balanced_step() if opts.method == "sinkhorn" else row_normalised(workers)
    # em/oem with track_eot_loss: the EOT loss of every iterate, by a balanced solve that
    # does not feed the fit.
    eot_tracker = balanced_step() if opts.method != "sinkhorn" and opts.track_eot_loss else None
    tracks = [_Track(trajectory=[] if opts.keep_trajectory else None) for _ in range(S)]
    finished: dict[int, tuple] = {}
    active = np.arange(S)
    means, covariances = means.copy(), covariances.copy()
    start = time.perf_counter()
    for iteration in range(opts.max_iter + 1):
        eps = float(schedule[iteration]) if iteration < schedule.size else float(opts.epsilon)
        coefficients = design.coefficients(means[active], covariances[active])
        step = e_step.solve(design, coefficients, weights[active], eps, active, statistics=iteration < opts.max_iter)
        if e_step.balanced:
            eot, n_balanced, tolerances, eot_solved = step.objective, step.n_iter, step.tol, step.solved
        elif eot_tracker is not None:
            tracked = eot_tracker.solve(design, coefficients, weights[active], eps, active, statistics=False)
            eot, n_balanced, tolerances, eot_solved = tracked.objective, tracked.n_iter, tracked.tol, tracked.solved
        else:
            eot, tolerances = np.full(active.size, np.nan), np.full(active.size, np.nan)
            n_balanced, eot_solved = step.n_iter, step.solved
        seconds = time.perf_counter() - start
        keep = np.ones(active.size, dtype=bool)
        for j, s in enumerate(active):
            track = tracks[s]
            objective = float(step.objective[j])
            track.failures += not eot_solved[j]
            track.rows.append(
                (
                    iteration,
                    eps,
                    objective,
                    float(step.nll[j]),
                    float(eot[j]),
                    int(n_balanced[j]),
                    seconds,
                    float(tolerances[j]),
                )
            )
            if track.trajectory is not None:
                track.trajectory.append(
                    {"weights": weights[s].copy(), "means": means[s].copy(), "covariances": covariances[s].copy()}
                )
            change = track.previous - objective
            if opts.verbose >= 2 and iteration % opts.verbose_interval == 0:
                label = f"start {s} " if S > 1 else ""
                out(
                    f"  {label}iteration {iteration:4d}  objective {objective:.10g}  change {change:.3e}  "
                    f"{seconds:8.3f} s  balanced-solver iterations {int(n_balanced[j])}"
                )
            # Objectives at different epsilons are not comparable: test only after the schedule.
            comparable = iteration > schedule.size
            if comparable and change < 0:
                track.largest_rise = max(track.largest_rise, -change / max(abs(objective), TINY))
            stopped = comparable and abs(change) < opts.tol
            # Converged only if both E-steps whose objectives were compared reached their tolerance.
            converged = stopped and bool(step.solved[j]) and track.previous_solved
            if stopped or iteration == opts.max_iter:
                finished[s] = (converged, iteration, objective)
                keep[j] = False
                if opts.verbose >= 1:
                    label = f"Start {s}" if S > 1 else "Fit"
                    state = "converged" if converged else "did not converge"
                    out(f"{label} {state} after {iteration} iterations: objective {objective:.10g}, {seconds:.3f} s")
            track.previous, track.previous_solved = objective, bool(step.solved[j])
        if not keep.any():
            break
        going = active[keep]
        nk, new_means, new_covariances = design.parameters(
            step.stats[keep], opts.reg_covar, masses=weights[going] if e_step.balanced else None
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
                track.largest_rise,
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
    if np.any(sparse) and design.covariance.per_component:
        covariances[sparse] = design.parameters(pooled, reg_covar)[2][0, 0]
    return covariances


def _batches(count, n, K, options):
    """Consecutive groups of starts that share their passes (see ``_BATCH_ENTRIES``)."""
    per_start = n * K
    size = max(1, min(_BATCH_ENTRIES // per_start, int(options.working_memory // (8 * per_start))))
    return [range(first, min(first + size, count)) for first in range(0, count, size)]


def run_starts(design, alpha, starts, options):
    """Fit every start ``(means, covariances)`` in batches of :func:`run`; one :class:`Run` per start.

    ``alpha`` is ``(K,)``, or ``(n_starts, K)`` for oEM starts with their own starting weights.
    """
    K = starts[0][0].shape[0]
    runs = []
    for batch in _batches(len(starts), design.n, K, options):
        means = np.stack([starts[s][0] for s in batch])
        covariances = np.stack([starts[s][1] for s in batch])
        runs += run(design, alpha if alpha.ndim == 1 else alpha[batch], means, covariances, options)
    return runs
