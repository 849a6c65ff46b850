"""The Dask backend: a fit whose passes are map-reduces over the row chunks of a ``dask.array``.

Every pass of a fit is a sum over samples (:mod:`._fit`), so over row chunks it is one map
(a chunk's partial sums, computed where the chunk lives) and one reduce (the partial sums
added on the client **in chunk order**, so the result does not depend on which worker
finished first). :class:`DaskDesign` holds one :mod:`._design` design per chunk, built and
persisted on the workers from the chunks (``X - centre`` with the global mean as
``centre``, a dask reduction); only parameters (``K x p`` cost coefficients, the ``K``
column potential) travel to the workers and only ``K``-sized sums, ``K x p`` moment
statistics and ``K x K`` Hessians come back. The parameter-only methods (``coefficients``,
``parameters``) are those of a local two-row template design with the same centre, so the
estimates are computed by the same code as in memory.

The E-steps have the interface of :class:`._fit.RowNormalisedEStep` and
:class:`._fit.BalancedEStep` (``solve(design, coefficients, weights, epsilon, active, *,
statistics)``) and :func:`._fit.run` takes them from the design (``design.e_steps``): the fit
loop is the in-memory one. The balanced E-step maximises the semi-dual

.. math:: D(g) = \\sum_k \\alpha_k g_k - \\frac1n\\sum_i \\log\\sum_k \\alpha_k e^{g_k - C_{ik}/\\varepsilon}

(rows exact: :math:`P_{ik} = \\frac1n \\alpha_k e^{g_k - C_{ik}/\\varepsilon} / \\sum_l \\alpha_l
e^{g_l - C_{il}/\\varepsilon}`) by Newton steps with the exact gradient
:math:`\\alpha - P^\\top 1` and the (negated) Hessian :math:`H = \\mathrm{diag}(P^\\top 1) - n
\\sum_i P_i P_i^\\top`, positive semi-definite with the constants as null space (solved by
:func:`._newton.newton_steps`, the in-memory solver's: a ridge and a constant pin), an Armijo
line search, and Sinkhorn's column step outside the Newton region or when the line search
fails; it stops when the
column marginal's L1 error is at most ``tol``, then takes the last column step and the
statistics pass as :class:`._fit.BalancedEStep` does (objective: ``epsilon * D(g)``).

The in-memory solver's two rescues of near-hard E-steps (:mod:`._newton`) are taken over
with its own functions: a warm start outside the Newton region gives way to the plain start
``g = 0`` where that has the larger semi-dual, and a *loose group* of columns (sharing
almost no sample with the others, so that ``D`` is flat along the group's common shift
until that shift crosses a cost gap of possibly thousands of nats) is found by
:func:`._newton._loose_groups` from the Newton step (inside the Newton region, or where
Sinkhorn's steps have stalled, :func:`._newton._stalled`) and moved to its own root
(:func:`group_roots`). A root is a 1-D equation, a sum over rows: the rows' logits stay on
the workers (sorted per chunk), and the client gets ``O(P)`` numbers a chunk per round for
``P`` groups: counts that bracket the root, then masses and slopes for Newton's method.

Persisted chunk designs are Dask data: a worker that dies loses its chunks, and Dask
recomputes them from the task graph of ``X`` (its retries); the fit's arithmetic is the same.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from . import _fit, _newton
from ._balanced import _masked_log_sum_exp, sample_blocks
from ._design import make_design
from ._newton import MAX_BACKTRACKS, MAX_NEWTON_STEP, NEWTON_REGION, ROUNDING_LEVEL
from ._numerics import SATURATED_LOGIT, TINY, UNDERFLOW, exp_below_row_max

__all__ = ["DaskDesign", "is_dask_array"]

_INSTALL_HINT = "install the Dask extra: pip install 'sinkhorn-em[dask]'"
# The line search's constants are the in-memory solver's (:mod:`._newton`, each with its reason);
# Armijo's sufficient-increase fraction as there.
_ARMIJO = 1e-4
# A loose group's root (group_roots): the points a round of the counting multisection (its
# bracket shrinks by this factor a round), the last Newton step (nats: the in-memory root's
# brentq xtol), the grid points of the bracket evaluated beside each Newton point (the bracket
# shrinks at least 8x a round: 12 rounds from 82 nats to 1e-8 without Newton), and a bound on
# the rounds of either phase.
ROOT_POINTS = 64
ROOT_XTOL = 1e-8
NEWTON_GRID = 7
ROOT_MAX_ROUNDS = 50


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array``, without importing dask when it is not loaded."""
    module = type(X).__module__ or ""
    return module.split(".")[0] == "dask" and hasattr(X, "chunks") and hasattr(X, "to_delayed")


def import_dask():
    """``(dask, dask.array)``, or an ImportError naming the extra."""
    try:
        import dask
        import dask.array as da
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"Fitting a dask array needs dask[array] and distributed; {_INSTALL_HINT}.") from error
    return dask, da


def check_dask_array(X, n_features=None, min_samples=2):
    """Check the shape, chunking and dtype of a dask array ``X`` (values are checked per chunk)."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array (n_samples, n_features), got {X.ndim} dimensions.")
    if len(X.chunks[1]) != 1:
        raise ValueError(
            f"The dask array is chunked along its columns ({len(X.chunks[1])} column chunks); each chunk must "
            "hold whole rows: rechunk with X.rechunk({1: -1})."
        )
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"Expected a numeric dask array, got dtype {X.dtype}.")
    n, d = X.shape
    if np.isnan(n):
        raise ValueError("The dask array's chunk sizes are unknown; call X.compute_chunk_sizes() first.")
    if n < min_samples:
        raise ValueError(f"Expected n_samples >= {min_samples}, got {n}.")
    if n_features is not None and d != n_features:
        raise ValueError(f"X has {d} features, but the estimator was fitted with {n_features} features.")


def _chunk_design(chunk, covariance_type, shift, index, first_row):
    """A chunk's design (run on a worker); non-finite values are an error naming the chunk."""
    chunk = np.asarray(chunk, dtype=float)
    if not np.all(np.isfinite(chunk)):
        row = first_row + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
        raise ValueError(
            f"X holds NaN or infinity in chunk {index} (first at row {row}); remove or impute those rows "
            "(e.g. X[da.isfinite(X).all(axis=1)])."
        )
    return make_design(chunk, covariance_type, shift=shift)


class DaskDesign:
    """The design of a row-chunked dask array ``X`` for ``covariance_type`` (see the module docstring).

    The chunk designs are persisted where the scheduler runs them (the workers of the
    current ``distributed`` client, else dask's default scheduler in this process); nothing
    of size ``n`` reaches the client.
    """

    def __init__(self, X, covariance_type, shift=None):
        dask, _ = import_dask()
        check_dask_array(X)
        self._dask = dask
        self.n, self.d = (int(v) for v in X.shape)
        X = X.astype(float)
        self.shift = X.mean(axis=0).compute() if shift is None else np.asarray(shift, dtype=float)
        self.template = make_design(np.tile(self.shift, (2, 1)), covariance_type, shift=self.shift)
        self.covariance = self.template.covariance
        self.covariance_type = self.template.covariance_type
        self.n_features = self.template.n_features
        self.chunk_rows = [int(c) for c in X.chunks[0]]
        starts = np.concatenate([[0], np.cumsum(self.chunk_rows)[:-1]])
        make = dask.delayed(_chunk_design, pure=True)
        delayed = [
            make(chunk, covariance_type, self.shift, index, int(first))
            for index, (chunk, first) in enumerate(zip(X.to_delayed().ravel(), starts))
        ]
        self.chunks = list(dask.persist(*delayed))

    # the parameter-only interface of a design (used by _fit)
    def coefficients(self, means, covariances):
        return self.template.coefficients(means, covariances)

    def coefficients_from_precision_cholesky(self, means, prec_chol):
        return self.template.coefficients_from_precision_cholesky(means, prec_chol)

    def log_kernel_coefficients(self, coefficients, offsets, scale):
        return self.template.log_kernel_coefficients(coefficients, offsets, scale)

    def parameters(self, stats, reg_covar, masses=None):
        return self.template.parameters(stats, reg_covar, masses=masses)

    @property
    def e_steps(self):
        """The E-step constructors :func:`._fit.run` uses for this design (row-normalised, balanced)."""
        return (lambda workers: DaskRowNormalisedEStep()), (
            lambda alpha, n_starts, *, tol, max_iter, newton, working_memory, workers: DaskBalancedEStep(
                alpha, n_starts, tol=tol, max_iter=max_iter, newton=newton
            )
        )

    def _tasks(self, function, args, chunks):
        dask = self._dask
        task = dask.delayed(function, pure=True)
        args = [dask.delayed(arg) if isinstance(arg, np.ndarray) and arg.size > 64 else arg for arg in args]
        return [task(chunk, *args) for chunk in (self.chunks if chunks is None else chunks)]

    def map_chunks(self, function, *args, chunks=None):
        """``function(chunk, *args)`` on every chunk, the results gathered in chunk order.

        ``chunks`` are per-chunk Dask data (persisted by :meth:`persist_map`); by default
        the chunk designs.
        """
        return self._dask.compute(*self._tasks(function, args, chunks))

    def persist_map(self, function, *args):
        """``function(chunk_design, *args)`` on every chunk, kept on the workers: a list in chunk order."""
        return list(self._dask.persist(*self._tasks(function, args, None)))

    def map_reduce(self, function, *args):
        """``function(chunk_design, *args)`` on every chunk, the results added in chunk order.

        ``function`` returns a tuple of arrays (or None entries); the sum of each entry over
        the chunks is returned, added chunk after chunk on the client.
        """
        return _add_in_order(self.map_chunks(function, *args))


def _add_in_order(parts):
    """The entry-wise sums of tuples ``parts`` (None entries skipped), added in their order."""
    total = list(parts[0])
    for part in parts[1:]:
        for j, value in enumerate(part):
            if value is not None:
                total[j] = total[j] + value
    return tuple(total)


# ---------------------------------------------------------------------- chunk passes (on the workers)
def _em_chunk(design, log_joint, log_joint_1, statistics):
    """A chunk's sums of :func:`._fit.em_pass`'s terms (:func:`._fit.em_block`), its blocks in order."""
    S, K = _shape(log_joint)
    total, nll_total, stats = np.zeros(S), None if log_joint_1 is None else np.zeros(S), None
    for cols in sample_blocks(design.n, S * K):
        nll_part, total_part, part = _fit.em_block(design, log_joint, log_joint_1, cols, statistics)
        if nll_part is not None:
            nll_total += nll_part
        total += total_part
        if statistics:
            stats = part if stats is None else stats + part
    return total, nll_total, stats


def _nll_chunk(design, log_joint):
    S, K = _shape(log_joint)
    total = np.zeros(S)
    for cols in sample_blocks(design.n, S * K):
        total += _fit._log_sum_exp_rows(design.log_kernel(log_joint, cols)).sum(axis=1)
    return (total,)


def _shape(prepared):
    """``(S, K)`` of prepared log-kernel coefficients (an array for moment designs, a tuple otherwise)."""
    if isinstance(prepared, np.ndarray):
        return prepared.shape[:2]
    return prepared[0][2].shape


def _row_normalised(design, log_joint, cols):
    """``(Q, log Z)``: rows of ``exp(log_joint)`` normalised to 1 and their log sums, ``(S, K, B)``, ``(S, B)``."""
    block = design.log_kernel(log_joint, cols)
    top = exp_below_row_max(block)
    row_sum = block.sum(axis=1)
    block /= row_sum[:, None, :]
    return block, top + np.log(row_sum)


def _balanced_chunk(design, log_joint, hessian):
    """Partial sums of a semi-dual evaluation: ``sum_i log Z_i``, ``sum_i Q_i`` and ``sum_i Q_i Q_i^T``."""
    S, K = _shape(log_joint)
    log_z, col = np.zeros(S), np.zeros((S, K))
    gram = np.zeros((S, K, K)) if hessian else None
    for cols in sample_blocks(design.n, S * K):
        q, lz = _row_normalised(design, log_joint, cols)
        log_z += lz.sum(axis=1)
        col += q.sum(axis=2)
        if hessian:
            gram += np.matmul(q, np.swapaxes(q, 1, 2))
    return log_z, col, gram


def _finish_chunk(design, log_joint, ratio, log_joint_1, statistics):
    """The last pass: rows of ``P = Q diag(ratio) / n``, their L1 error, the plan's statistics, the NLL sums."""
    S, K = _shape(log_joint)
    row_error, stats = np.zeros(S), None
    nll_total = None if log_joint_1 is None else np.zeros(S)
    for cols in sample_blocks(design.n, S * K):
        q, _ = _row_normalised(design, log_joint, cols)
        rows = np.einsum("skb,sk->sb", q, ratio)  # n * (row sums of P)
        row_error += np.abs(rows - 1.0).sum(axis=1)
        if statistics:
            part = design.scaled_statistics(q, np.ones((S, q.shape[2])), ratio, cols)
            stats = part if stats is None else stats + part
        if log_joint_1 is not None:
            nll_total += _fit._log_sum_exp_rows(design.log_kernel(log_joint_1, cols)).sum(axis=1)
    return row_error, stats, nll_total


def _group_logits_chunk(design, log_joint, starts, masks):
    """The logits of the chunk's rows' responsibilities to groups, each row sorted: ``(P, B)``.

    Pair ``p`` is the group ``G = masks[p]`` of start ``starts[p]``; row ``i``'s logit is
    ``log sum_{k in G} e^{L_ik} - log sum_{k not in G} e^{L_ik}`` with ``L`` the start's log
    kernel (no floor), both sums against the row's largest entry (one exponential a row and
    component, shared by the start's groups) and redone against their own maxima where a
    side underflows there (more than ~575 nats below it). A root is a sum over rows, so the
    logits are kept sorted, not in row order (:func:`_group_mass_chunk` reads them so).
    """
    S, K = _shape(log_joint)
    out = np.empty((len(starts), design.n))
    for cols in sample_blocks(design.n, S * K):
        block = design.log_kernel(log_joint, cols)
        for s in np.unique(starts):
            pairs = np.flatnonzero(starts == s)
            own = block[s]
            scaled = np.exp(own - own.max(axis=0))
            chosen = masks[pairs].astype(float)
            inside, outside = chosen @ scaled, (1.0 - chosen) @ scaled
            with np.errstate(divide="ignore"):
                logits = np.log(inside) - np.log(outside)
            for r, p in enumerate(pairs):
                lost = (inside[r] < UNDERFLOW) | (outside[r] < UNDERFLOW)
                if lost.any():
                    sub = own[:, lost]
                    logits[r, lost] = _masked_log_sum_exp(sub, masks[p]) - _masked_log_sum_exp(sub, ~masks[p])
            out[pairs, cols] = logits
    out.sort(axis=1)
    return out


def _logit_range_chunk(logits):
    return logits[:, 0], logits[:, -1]


def _group_count_chunk(logits, points):
    """``#{i : logits[p, i] > points[p, m]}`` over the chunk's rows (sorted logits), ``(P, M)``."""
    return (np.stack([logits.shape[1] - np.searchsorted(row, x, side="right") for row, x in zip(logits, points)]),)


def _group_mass_chunk(logits, points):
    """``sum_i expit(c + l_pi)`` and its derivative in ``c`` at ``c = points[p, m]`` over the chunk's rows, ``(P, M)`` each.

    With the logits sorted, the rows with ``|c + l_pi| > SATURATED_LOGIT`` are counted (a
    whole ``1`` or nothing, to within ``expit(-SATURATED_LOGIT) = 4e-18`` each) and only
    those between take an exponential.
    """
    mass, slope = np.zeros(points.shape), np.zeros(points.shape)
    for p, (row, shifts) in enumerate(zip(logits, points)):
        first = np.searchsorted(row, -shifts - SATURATED_LOGIT, side="left")
        last = np.searchsorted(row, -shifts + SATURATED_LOGIT, side="right")
        for m, shift in enumerate(shifts):
            near = special.expit(shift + row[first[m] : last[m]])
            mass[p, m] = (row.size - last[m]) + near.sum()
            slope[p, m] = (near * (1.0 - near)).sum()
    return mass, slope


def _scaled_stats(stats, n):
    return None if stats is None else stats / n


# ---------------------------------------------------------------------- E-steps (on the client)
class DaskRowNormalisedEStep:
    """:class:`._fit.RowNormalisedEStep` over the chunks of a :class:`DaskDesign` (one map-reduce)."""

    balanced = False

    def solve(self, design, coefficients, weights, epsilon, active, *, statistics):
        log_weights = np.log(weights)
        log_joint = design.log_kernel_coefficients(coefficients, log_weights, 1.0 / epsilon)
        log_joint_1 = None if epsilon == 1.0 else design.log_kernel_coefficients(coefficients, log_weights, 1.0)
        total, nll_total, stats = design.map_reduce(_em_chunk, log_joint, log_joint_1, bool(statistics))
        objective = -epsilon * total / design.n
        nll = objective.copy() if nll_total is None else -nll_total / design.n
        count = active.size
        return _fit.EStepResult(
            stats, objective, nll, np.zeros(count, dtype=int), np.ones(count, dtype=bool), np.full(count, np.nan)
        )


class DaskBalancedEStep:
    """:class:`._fit.BalancedEStep` over the chunks of a :class:`DaskDesign` (see the module docstring).

    ``newton=False`` takes Sinkhorn column steps only. The column potential ``g`` of each
    start warm-starts its next E-step.
    """

    balanced = True

    def __init__(self, alpha, n_starts, *, tol, max_iter, newton=True):
        self.tol, self.max_iter, self.newton = float(tol), int(max_iter), bool(newton)
        self.g = np.zeros((n_starts, np.asarray(alpha).size))

    def _evaluate(self, design, coefficients, log_weights, g, epsilon, hessian):
        """``(D, col, H)`` at ``g``: the semi-dual, the column masses and the Newton matrix (or None)."""
        n = design.n
        log_joint = design.log_kernel_coefficients(coefficients, log_weights + g, 1.0 / epsilon)
        log_z, col, gram = design.map_reduce(_balanced_chunk, log_joint, bool(hessian))
        alpha = np.exp(log_weights)
        value = np.einsum("sk,sk->s", alpha, g) - log_z / n
        col = col / n
        H = None
        if hessian:
            H = -gram / n
            H[:, np.arange(col.shape[1]), np.arange(col.shape[1])] += col
        return value, col, H

    def _group_shifts(self, design, coefficients, log_weights, g, epsilon, groups):
        """Shifts ``(len(groups), K)`` moving each loose group ``groups[s]`` of start ``s`` to its root.

        As :meth:`._balanced.Problem.group_roots`: the common shift ``c`` of the group's
        potentials with column mass ``mean_i expit(c + l_iG) = sum_{k in G} alpha_k``
        (:func:`group_roots`), the other potentials fixed.
        """
        log_joint = design.log_kernel_coefficients(coefficients, log_weights + g, 1.0 / epsilon)
        pairs = [(s, mask) for s in sorted(groups) for mask in groups[s]]
        starts = np.array([s for s, _ in pairs])
        masks = np.array([mask for _, mask in pairs])
        targets = np.array([np.exp(log_weights[s, mask]).sum() for s, mask in pairs])
        roots = group_roots(design, log_joint, starts, masks, targets)
        shifts = np.zeros((len(groups), g.shape[1]))
        position = {s: j for j, s in enumerate(sorted(groups))}
        for (s, mask), root in zip(pairs, roots):
            shifts[position[s], mask] = root
        return shifts

    def potential(self, design, coefficients, weights, epsilon, active):
        """Solve to ``tol``: ``(g, D, col, n_iter, solved)`` for the starts ``active``."""
        log_weights = np.log(weights)
        alpha = weights
        g = self.g[active].copy()
        newton = self.newton
        value, col, H = self._evaluate(design, coefficients, log_weights, g, epsilon, newton)
        # A warm start far worse than the plain start (g = 0: the EM E-step) after a large
        # move of the parameters: where it is outside the Newton region, keep the start with
        # the larger semi-dual (it is concave: the one closer to the solution in value).
        far = _outside_newton_region(col, alpha) & np.any(g != 0.0, axis=1)
        if far.any():
            plain = np.where(far[:, None], 0.0, g)
            plain_value, plain_col, plain_H = self._evaluate(design, coefficients, log_weights, plain, epsilon, newton)
            better = far & (plain_value > value)
            g, value, col, H = _take((g, value, col, H), (plain, plain_value, plain_col, plain_H), better)
        n_iter = np.zeros(active.size, dtype=int)
        progress = _newton._Progress(active.size)
        for _ in range(self.max_iter):
            error = np.abs(col - alpha).sum(axis=1)
            going = error > self.tol
            if not going.any():
                break
            n_iter[going] += 1
            residual = alpha - col
            step = np.zeros_like(g)
            # Newton steps (_newton.newton_steps, as in memory) inside the region; wherever one is
            # computed, and where Sinkhorn's steps have stalled outside the region, a look for
            # loose groups, moved to their roots (as the in-memory solver: _newton._step).
            outside = _outside_newton_region(col, alpha)
            stalled = np.zeros(active.size, dtype=bool)
            if newton:
                moving = np.flatnonzero(going)
                stalled[moving] = _newton._stalled(progress, moving, residual[moving], outside[moving])
            candidates = np.flatnonzero(going & (~outside | stalled)) if newton else np.zeros(0, dtype=int)
            newton_step = np.zeros(active.size, dtype=bool)
            groups = {}
            if candidates.size:
                steps, ok = _newton.newton_steps(H[candidates], col[candidates], residual[candidates])
                for s, full in zip(candidates[ok], steps[ok]):
                    to_root = _newton._loose_groups(H[s], full, col[s], residual[s], MAX_NEWTON_STEP)
                    if to_root:
                        groups[s] = to_root
                        continue
                    if not outside[s]:
                        step[s] = full * min(1.0, MAX_NEWTON_STEP / max(np.abs(full).max(), TINY))
                        newton_step[s] = True
            rooted = np.zeros(active.size, dtype=bool)
            if groups:
                rooted[list(groups)] = True
                step[rooted] = self._group_shifts(design, coefficients, log_weights, g, epsilon, groups)
            sinkhorn = going & ~newton_step & ~rooted
            step[sinkhorn] = np.log(alpha[sinkhorn] / col[sinkhorn])
            # Sinkhorn's column step never lowers D, a group root maximises D along the group's
            # shift: neither is line-searched.
            direct = sinkhorn | rooted
            predicted = np.einsum("sk,sk->s", residual, step)
            t = np.where(going & ~direct, 1.0, 0.0)
            trial = (g, value, col, H)
            accepted = ~going | direct
            if direct.any():
                trial_value, trial_col, trial_H = self._evaluate(
                    design, coefficients, log_weights, np.where(direct[:, None], g + step, g), epsilon, newton
                )
                trial = _take(trial, (g + step, trial_value, trial_col, trial_H), direct)
            if accepted.all():
                g, value, col, H = trial
                continue
            for _ in range(MAX_BACKTRACKS):
                trial_g = g + t[:, None] * step
                trial_value, trial_col, trial_H = self._evaluate(
                    design, coefficients, log_weights, trial_g, epsilon, newton
                )
                gain = trial_value - value
                shrinks = np.abs(trial_col - alpha).sum(axis=1) < error
                good = (gain >= _ARMIJO * t * predicted) | ((np.abs(t * predicted) < ROUNDING_LEVEL) & shrinks)
                good &= ~accepted
                trial = _take(trial, (trial_g, trial_value, trial_col, trial_H), good)
                accepted |= good
                if accepted.all():
                    break
                t = np.where(accepted, 0.0, t * 0.5)
            else:
                # The line search failed: Sinkhorn's column step, which never lowers D.
                failed = ~accepted
                sinkhorn_g = g.copy()
                sinkhorn_g[failed] += np.log(alpha[failed] / col[failed])
                step_value, step_col, step_H = self._evaluate(
                    design, coefficients, log_weights, sinkhorn_g, epsilon, newton
                )
                trial = _take(trial, (sinkhorn_g, step_value, step_col, step_H), failed)
            g, value, col, H = trial
        solved = np.abs(col - alpha).sum(axis=1) <= self.tol
        return g, value, col, n_iter, solved

    def solve(self, design, coefficients, weights, epsilon, active, *, statistics):
        n = design.n
        log_weights = np.log(weights)
        g, value, col, n_iter, _ = self.potential(design, coefficients, weights, epsilon, active)
        ratio = weights / col  # the last column step: columns exact
        self.g[active] = g + np.log(ratio)
        log_joint = design.log_kernel_coefficients(coefficients, log_weights + g, 1.0 / epsilon)
        log_joint_1 = design.log_kernel_coefficients(coefficients, log_weights, 1.0)
        row_error, stats, nll_total = design.map_reduce(_finish_chunk, log_joint, ratio, log_joint_1, bool(statistics))
        solved = row_error / n <= self.tol
        return _fit.EStepResult(
            _scaled_stats(stats, n), epsilon * value, -nll_total / n, n_iter, solved, np.full(active.size, self.tol)
        )


def group_roots(design, log_joint, starts, masks, targets):
    """The shifts ``c_p`` with ``S_p(c) = mean_i expit(c + l_pi) = targets[p]``, over the chunks of ``design``.

    ``l_pi`` is row ``i``'s logit of its responsibility to the group ``masks[p]`` of start
    ``starts[p]`` (:func:`_group_logits_chunk`: the logits of the in-memory root,
    :meth:`._balanced.Problem.group_roots`); ``S_p`` increases from 0 to 1. The logits are
    computed and kept on the workers, sorted per chunk (``P`` doubles a row beside the
    chunk's design, released on return); what travels is ``O(P)`` numbers a chunk a round:

    1. the hard mass ``H_p(x) = #{l_pi > x} / n`` (counts, no exponential) brackets the
       quantile ``x_p`` where it crosses the target to within 1 nat, by a multisection from
       the logits' range (``ROOT_POINTS - 1`` points a round, 2-3 rounds for thousands of
       nats); ``S_p`` is within ``expit(-SATURATED_LOGIT) = 4e-18`` of ``H_p`` shifted by
       ``SATURATED_LOGIT``, so the root lies in ``[-x_p - SATURATED_LOGIT - 1, -x_p +
       SATURATED_LOGIT + 1]``;
    2. there, Newton's method on ``S_p(c) - target`` with the exact derivative, a bisection
       where the Newton point leaves the bracket or the step does not halve (as Numerical
       Recipes' ``rtsafe``), each round also evaluating ``NEWTON_GRID`` points of the
       bracket (one map-reduce of ``P x (NEWTON_GRID + 1)`` masses and slopes), until the
       step or the bracket is at most ``ROOT_XTOL`` (the in-memory root's ``brentq``
       tolerance).
    """
    n = design.n
    logits = design.persist_map(_group_logits_chunk, log_joint, starts, masks)
    ranges = design.map_chunks(_logit_range_chunk, chunks=logits)
    low_x = np.min([low for low, _ in ranges], axis=0) - 1.0
    high_x = np.max([high for _, high in ranges], axis=0)
    fractions = np.arange(1, ROOT_POINTS) / ROOT_POINTS
    pairs = np.arange(len(starts))
    for _ in range(ROOT_MAX_ROUNDS):
        if not np.any(high_x - low_x > 1.0):
            break
        # H(low_x) >= target > H(high_x); keep the sub-interval where H falls below the target.
        points = low_x[:, None] + (high_x - low_x)[:, None] * fractions
        (counts,) = _add_in_order(design.map_chunks(_group_count_chunk, points, chunks=logits))
        below = counts / n < targets[:, None]
        first = np.where(below.any(axis=1), below.argmax(axis=1), ROOT_POINTS - 1)
        grid = np.column_stack([low_x, points, high_x])
        low_x, high_x = grid[pairs, first], grid[pairs, first + 1]
    low, high = -high_x - SATURATED_LOGIT - 1.0, -low_x + SATURATED_LOGIT + 1.0
    c = 0.5 * (low + high)
    previous = high - low
    inner = np.arange(1, NEWTON_GRID + 1) / (NEWTON_GRID + 1)
    for _ in range(ROOT_MAX_ROUNDS):
        # The Newton (or bisection) point, and a grid of the bracket that shrinks it at least
        # NEWTON_GRID + 1 times a round whatever Newton does.
        points = np.column_stack([c, low[:, None] + (high - low)[:, None] * inner])
        mass, slope = _add_in_order(design.map_chunks(_group_mass_chunk, points, chunks=logits))
        excess = mass / n - targets[:, None]
        low = np.maximum(low, np.where(excess < 0.0, points, -np.inf).max(axis=1))
        high = np.minimum(high, np.where(excess >= 0.0, points, np.inf).min(axis=1))
        best = np.abs(excess).argmin(axis=1)
        at, best_excess, best_slope = points[pairs, best], excess[pairs, best], slope[pairs, best]
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = at - best_excess * n / best_slope
        bisect = ~((newton > low) & (newton < high) & (np.abs(newton - c) <= 0.5 * previous))
        following = np.where(bisect, 0.5 * (low + high), newton)
        previous = np.abs(following - c)
        c = following
        if np.all((previous <= ROOT_XTOL) | (high - low <= ROOT_XTOL)):
            break
    return c


def _outside_newton_region(col, alpha):
    """Starts whose column masses are not all within ``NEWTON_REGION`` (log-ratio) of ``alpha``."""
    with np.errstate(divide="ignore"):
        return ~(np.abs(np.log(col / alpha)).max(axis=1) <= NEWTON_REGION)


def _take(current, new, mask):
    """``current`` with the starts ``mask`` replaced by ``new`` (tuples of per-start arrays)."""
    out = []
    for old, fresh in zip(current, new):
        if old is None:
            out.append(None)
            continue
        value = old.copy()
        value[mask] = fresh[mask]
        out.append(value)
    return tuple(out)


# ---------------------------------------------------------------------- initialisation and inference
def _nearest_chunk(design, means_c, K, statistics):
    """Counts of the points nearest to each (centred) mean and, optionally, their hard statistics."""
    counts, stats, pooled = np.zeros(K), None, None
    squared = np.einsum("kd,kd->k", means_c, means_c)
    for cols in sample_blocks(design.n, K):
        X = centred_rows(design, cols)
        labels = (squared[None, :] - 2.0 * X @ means_c.T).argmin(axis=1)
        counts += np.bincount(labels, minlength=K)
        if statistics:
            hard = np.zeros((1, K, X.shape[0]))
            hard[0, labels, np.arange(X.shape[0])] = 1.0
            part = design.statistics(hard, cols)
            ones = design.statistics(np.ones((1, 1, X.shape[0])), cols)
            stats = part if stats is None else stats + part
            pooled = ones if pooled is None else pooled + ones
    return counts, stats, pooled


def centred_rows(design, cols):
    """The rows ``cols`` of a chunk design's centred data, ``(B, d)``."""
    if hasattr(design, "features"):
        return design.features[design.n_second : design.n_second + design.d, cols].T
    return design.X[cols]


def covariances_around(design, means, reg_covar):
    """:func:`._fit.covariances_around` as one map-reduce over the chunks."""
    K = means.shape[0]
    counts, stats, pooled = design.map_reduce(_nearest_chunk, means - design.shift, K, True)
    covariances = design.parameters(stats, reg_covar)[2][0]
    sparse = counts < 2
    if np.any(sparse) and design.covariance.per_component:
        covariances[sparse] = design.parameters(pooled, reg_covar)[2][0, 0]
    return covariances


def cell_sizes(design, means):
    """Number of points nearest to each mean (Euclidean), one map-reduce."""
    return design.map_reduce(_nearest_chunk, means - design.shift, means.shape[0], False)[0]


def sample_rows(X, size, rng):
    """A uniform random sample of at most ``size`` rows of ``X``, gathered (the only rows that reach the client)."""
    n = X.shape[0]
    if n <= size:
        rows = np.arange(n)
    else:
        rows = np.sort(rng.choice(n, size=size, replace=False))
    return np.asarray(X[rows].compute(), dtype=float)


def map_rows(X, function, n_columns, dtype=float):
    """``function`` on every row chunk of ``X`` (a dask array), giving ``(n, n_columns)`` or ``(n,)`` chunks."""
    if n_columns is None:
        return X.map_blocks(function, drop_axis=1, dtype=dtype)
    return X.map_blocks(function, chunks=(X.chunks[0], (n_columns,)), dtype=dtype)


def balanced_potential(design, means, covariances, weights, epsilon, tol, max_iter):
    """The balanced problem at fixed parameters, solved to ``tol``: ``(g, ratio, value, solved)``.

    ``g`` is the column potential with rows exact, ``ratio = alpha / (P^T 1)`` its last
    column step (the plan ``P diag(ratio)`` has exact columns), ``value = epsilon * D(g)``
    the EOT loss (to ``O(tol^2)``).
    """
    step = DaskBalancedEStep(weights, 1, tol=tol, max_iter=max_iter)
    coefficients = design.coefficients(means[None], covariances[None])
    g, value, col, _, solved = step.potential(design, coefficients, weights[None], float(epsilon), np.arange(1))
    return g[0], weights / col[0], float(epsilon * value[0]), bool(solved[0])
