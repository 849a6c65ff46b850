"""Balanced entropic OT for a batch of problems sharing their rows, kernel stored or recomputed.

The engine behind :func:`~sinkhorn_em.sinkhorn.sinkhorn_log`,
:func:`~sinkhorn_em.sinkhorn.sinkhorn_newton` and the Sinkhorn-EM E-step; its guards
(absorption bound, kernel floor, underflow threshold, block size) are :mod:`._numerics`'s.
``S`` problems (one per start of a batch of fits) share the row marginal ``a`` (``n``
samples) and have ``K`` columns each, with column marginals ``b[s]``. Each is solved
independently, by Sinkhorn's iterations (:func:`~sinkhorn_em.sinkhorn.sinkhorn_log`: a
:meth:`Problem.build`, then one :meth:`Problem.row_step` per iteration) or by those
documented in :func:`~sinkhorn_em.sinkhorn.sinkhorn_newton` (Sinkhorn's row update, Newton
steps on the column log-scaling with an Armijo line search, a reused and BFGS-corrected
Laplacian Hessian, Sinkhorn steps far from the solution; see :mod:`._newton`); this module
holds the problems and their passes over the data, which is all the batch shares. Each
problem's arithmetic does not depend on the other problems of its batch.

Kernels are laid out ``(S, K, n)`` (samples contiguous) and every pass runs block of samples
by block of samples, so that what a pass computes from a block is reused while the block is
in cache. The kernel ``exp(f0 + g0 - C/eps)`` is either **stored** (``S K n`` doubles), or,
when that exceeds the memory budget, **recomputed** block by block from the costs (for a
fit: one product with the moment features and one exponential per block), so that memory
stays ``O(n + block)`` whatever ``n K``.

Every entry of a stored kernel is ``exp(g0_k - C_ik/eps - max_k(...))``: at most 1, and 1
for each sample's largest entry, so the row scaling ``u = a / (kernel v)`` stays within
``[a / (K max v), a / min v]``; the column scaling ``v = exp(log_v)`` is absorbed into the
potentials (a rebuild) as soon as it leaves ``[e^-50, e^50]``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from ._numerics import (
    ABSORB_LOG_BOUND,
    BLOCK_BYTES,
    LOG_FLOOR,
    NARROW,
    SATURATED_LOGIT,
    SINGLE_ROUND_OFF,
    UNDERFLOW,
    exp_below_row_max,
)
from ._parallel import SERIAL


def sample_blocks(n, width, block_bytes=None):
    """Slices of about ``block_bytes`` for arrays with ``width`` doubles per sample."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    size = max(64, block_bytes // (8 * max(width, 1)))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


class DenseCost:
    """A given ``(n, K)`` matrix of scaled costs ``C / eps``: one problem."""

    def __init__(self, scaled):
        self.scaled = scaled
        self.n, self.K = scaled.shape
        self.S = 1

    def prepare(self, idx, offsets):
        """A function ``(cols, out) -> offsets[s, k] - C[i, k] / eps`` as ``(1, K, B)``."""
        offsets = np.asarray(offsets, dtype=float)[:, :, None]

        def block(cols, out=None):
            return np.subtract(offsets, self.scaled[cols].T[None], out=out)

        return block


class DesignCost:
    """Scaled costs ``C / eps`` of a stack of parameter sets on a design (``_design``)."""

    def __init__(self, design, coefficients, epsilon):
        self.design = design
        self.coefficients = coefficients
        self.epsilon = float(epsilon)
        self.n = design.n
        self.S, self.K = coefficients[-1].shape

    def prepare(self, idx, offsets):
        """A function ``(cols, out) -> offsets[s, k] - C[s, k, i] / eps`` for the problems ``idx``."""
        coefficients = self.coefficients if len(idx) == self.S else tuple(c[idx] for c in self.coefficients)
        prepared = self.design.log_kernel_coefficients(coefficients, offsets, 1.0 / self.epsilon)
        design = self.design

        def block(cols, out=None):
            return design.log_kernel(prepared, cols, out)

        return block


class Problem:
    """``S`` balanced problems sharing the row marginal ``a``; holds the kernel and the iterate.

    ``store=True`` keeps the absorbed kernel (``S K n`` doubles, one contiguous array per
    block of samples); ``False`` recomputes it from ``source`` in every pass. ``workspace``
    (a dict) lends the kernel and work arrays from one problem to the next of the same
    shape: the first write to fresh memory costs as much as the write itself (page faults).
    ``workers`` (a :class:`._parallel.Workers`) runs each pass's blocks, on threads when it
    has more than one; every pass adds the blocks' partial sums in block order, so that
    the results do not depend on the number of threads.
    """

    def __init__(self, source, a, b, *, store, workspace=None, workers=None):
        self.source = source
        self.a = a
        self.log_a = np.log(a)
        self.sqrt_a = np.sqrt(a)
        self.b = b
        self.log_b = np.log(b)
        self.S, self.K = b.shape
        self.n = a.size
        # Column log-scalings outside these bounds are absorbed into the potentials (a rebuild).
        self.log_v_bounds = (-ABSORB_LOG_BOUND, ABSORB_LOG_BOUND)
        self.blocks = sample_blocks(self.n, self.S * self.K)
        self.workers = SERIAL if workers is None else workers
        self._scratch = {} if workspace is None else workspace
        self.kernel = None
        if store:
            key = ("kernel", self.S, self.K, self.n, len(self.blocks))
            self.kernel = self._scratch.get(key)
            if self.kernel is None:
                for other in [k for k in self._scratch if k[0] == "kernel"]:
                    del self._scratch[other]  # one kernel at a time
                self.kernel = [np.empty((self.S, self.K, c.stop - c.start)) for c in self.blocks]
                self._scratch[key] = self.kernel
        self.f0 = np.zeros((self.S, self.n))
        self.g0 = np.zeros((self.S, self.K))
        self.log_v = np.zeros((self.S, self.K))
        self.u = np.ones((self.S, self.n))
        self.col = np.zeros((self.S, self.K))
        self.dual = np.zeros(self.S)
        self.passes = 0  # passes over the data (for the benchmark)
        self.mixture_log_weights = None  # see build
        self.log_mixture = None
        self.has_log_mixture = None

    # ------------------------------------------------------------------ helpers
    def _all(self, idx):
        return len(idx) == self.S

    def scratch(self, name, shape, dtype=float):
        """A reused work array (fresh allocations of block-sized arrays page-fault every time).

        Each worker thread gets its own (see :meth:`._parallel.Workers.scratch`).
        """
        return self.workers.scratch(self._scratch, name, shape, dtype)

    def track_mixture(self, log_weights):
        """Have every build store the log mixture density of each sample (see :meth:`build`)."""
        self.mixture_log_weights = log_weights
        self.log_mixture = np.empty((self.S, self.n))
        self.has_log_mixture = np.zeros(self.S, dtype=bool)

    def _gram(self, weighted):
        """``weighted @ weighted^T`` per problem, a block's term of a Gram sum (single precision above ``NARROW``).

        Returned, not added: the caller adds the blocks' terms in block order.
        """
        if self.K <= NARROW:
            return np.matmul(weighted, np.swapaxes(weighted, 1, 2))
        single = self.scratch("single", weighted.shape, np.float32)
        np.copyto(single, weighted, casting="same_kind")
        single += SINGLE_ROUND_OFF
        single -= SINGLE_ROUND_OFF
        gram = np.empty((single.shape[0], self.K, self.K), dtype=np.float32)
        for s in range(single.shape[0]):
            gram[s] = single[s] @ single[s].T
        return gram

    def _weighted_gram(self, weighted, v):
        """The Gram term of ``weighted`` scaled by the column scalings ``v`` (``(S, K, 1)``)."""
        weighted *= v
        return self._gram(weighted)

    @staticmethod
    def _laplacian(W):
        """The negative semi-dual Hessian from the shared masses ``W`` (diagonal ignored)."""
        K = W.shape[1]
        diag = np.arange(K)
        W[:, diag, diag] = 0.0
        hessian = -W
        hessian[:, diag, diag] = W.sum(axis=2)
        return hessian

    # ------------------------------------------------------------------ passes
    def kernel_block(self, idx):
        """A function ``(b, cols) -> kernel block b of the problems idx`` (stored or recomputed); one pass.

        A recomputed block lives in the calling thread's scratch array: it is valid until
        that thread asks for its next block.
        """
        self.passes += 1
        full = self._all(idx)
        kernel = self.kernel
        if kernel is not None:
            if full:
                return lambda b, cols: kernel[b]
            return lambda b, cols: kernel[b][idx]
        log_kernel = self.source.prepare(idx, self.g0 if full else self.g0[idx])
        f0 = self.f0 if full else self.f0[idx]
        shape = (len(idx), self.K)

        def block_of(b, cols):
            block = log_kernel(cols, out=self.scratch("cost", shape + (cols.stop - cols.start,)))
            block += f0[:, None, cols]
            np.maximum(block, LOG_FLOOR, out=block)
            return np.exp(block, out=block)

        return block_of

    def build(self, idx, g, hessian=None, *, row_sums=None):
        """Absorb the column potentials ``g`` (``(len(idx), K)``) into fresh kernels: one row half-step.

        ``hessian`` (a boolean mask over ``idx``) asks for the negative semi-dual Hessian of
        those problems at the new iterate, computed from the blocks while they are in cache;
        returned as ``(len(idx), K, K)`` (zeros elsewhere), else ``None``. ``row_sums`` (an
        array ``(len(idx), n)``), when given, receives the new kernels' row sums ``kernel 1``
        (``a / u``, without the rounding of that division).

        With :meth:`track_mixture` (for eps = 1), the build also stores
        ``log sum_k w_k e^{-C_ik}`` of every sample in ``self.log_mixture`` (double precision,
        one product with each block before it is stored): the NLL's terms. With
        ``E_ik = exp(g_k - C_ik - top_i)``, ``sum_k w_k e^{-C_ik} = e^{top_i} sum_k E_ik w_k e^{-g_k}``.
        """
        self.passes += 1
        full = self._all(idx)
        log_kernel = self.source.prepare(idx, g)
        count = len(idx)
        col = np.zeros((count, self.K))
        log_rows = np.zeros(count)
        f0 = np.empty((count, self.n))
        u = np.empty((count, self.n))
        chosen = None if hessian is None or not np.any(hessian) else np.flatnonzero(hessian)
        W = None if chosen is None else np.zeros((chosen.size, self.K, self.K))
        mixture_row = None
        if self.mixture_log_weights is not None:
            shift = self.mixture_log_weights[idx] - g
            top_shift = shift.max(axis=1)
            # Weights spanning more than -LOG_FLOOR orders of e would underflow: no NLL from the kernel.
            if np.ptp(shift, axis=1).max() <= -LOG_FLOOR:
                mixture_row = np.exp(shift - top_shift[:, None])
                log_mixture = np.empty((count, self.n))
        log_mixture_ok = mixture_row is not None
        # The row sums and the mixture densities are both sums over components: one product
        # with the block gives them (a BLAS product reads the block once, faster than sum()).
        reducers = np.ones((count, 1 if mixture_row is None else 2, self.K))
        if mixture_row is not None:
            reducers[:, 1] = mixture_row
        # A stored kernel block is written in place.
        in_place = self.kernel is not None and full

        def one(b, cols):
            width = cols.stop - cols.start
            block = log_kernel(cols, out=self.kernel[b] if in_place else self.scratch("cost", (count, self.K, width)))
            top = exp_below_row_max(block)
            sums = np.matmul(reducers, block)
            row_sum = sums[:, 0]
            if row_sums is not None:
                row_sums[:, cols] = row_sum
            u_block = np.divide(self.a[cols], row_sum, out=u[:, cols])
            f0[:, cols] = -top
            col_part = np.matmul(block, u_block[:, :, None])[:, :, 0]
            log_rows_part = np.log(row_sum) @ self.a[cols]
            mixture_ok = True
            if mixture_row is not None:
                mixture = sums[:, 1]
                mixture_ok = bool(mixture.min() > 0.0)
                with np.errstate(divide="ignore"):
                    np.log(mixture, out=log_mixture[:, cols])
                log_mixture[:, cols] += top
            gram = None
            if W is not None:
                weighted = self.scratch("weighted", (chosen.size, self.K, width))
                np.multiply(block[chosen], (u_block[chosen] / self.sqrt_a[cols])[:, None, :], out=weighted)
                gram = self._gram(weighted)
            if self.kernel is not None and not in_place:
                self.kernel[b][idx] = block
            return col_part, log_rows_part, mixture_ok, gram

        for col_part, log_rows_part, mixture_ok, gram in self.workers.map(one, self.blocks):
            col += col_part
            log_rows += log_rows_part
            log_mixture_ok &= mixture_ok
            if gram is not None:
                W += gram
        if log_mixture_ok:
            self.log_mixture[idx] = log_mixture + top_shift[:, None]
            self.has_log_mixture[idx] = True
        elif self.mixture_log_weights is not None:
            self.has_log_mixture[idx] = False
        self.f0[idx] = f0
        self.g0[idx] = g
        self.u[idx] = u
        self.col[idx] = col
        self.log_v[idx] = 0.0
        self.dual[idx] = -log_rows
        if W is None:
            return None
        hessians = np.zeros((count, self.K, self.K))
        hessians[chosen] = self._laplacian(W)
        return hessians

    def shift(self, idx, c):
        """Move a constant ``c[s]`` from the column log-scaling into the potentials: nothing else changes.

        ``P = diag(u) kernel diag(v)`` with ``kernel = exp(f0 + g0 - C/eps)`` is the same
        plan with ``g0 + c``, ``f0 - c`` (the same kernel), ``v e^-c`` and ``u e^c``; its
        column masses and semi-dual value are unchanged (the marginals both sum to one).
        """
        c = np.asarray(c, dtype=float)
        self.log_v[idx] -= c[:, None]
        self.g0[idx] += c[:, None]
        self.f0[idx] -= c[:, None]
        self.u[idx] *= np.exp(c)[:, None]

    def absorb(self, idx, f, g):
        """Kernels ``exp(f + g - C/eps)`` as they are (no normalisation), scalings reset to one."""
        self.f0[idx] = f
        self.g0[idx] = g
        self.u[idx] = 1.0
        self.log_v[idx] = 0.0
        if self.kernel is not None:
            log_kernel = self.source.prepare(idx, g)

            def one(b, cols):
                block = log_kernel(cols)
                block += f[:, None, cols]
                self.kernel[b][idx] = np.exp(block)

            for _ in self.workers.map(one, self.blocks):
                pass

    def row_step(self, idx, log_v, *, row_sums=None, dual=True, u_out=None):
        """Row half-step for ``v = exp(log_v)``: ``(u, col, dual, ok)``, all ``kernel v > 0`` in ``ok``.

        The row sums ``kernel v`` and the column masses ``kernel^T u`` come from one pass,
        block by block. ``row_sums`` (an array ``(len(idx), n)``), when given, receives
        ``kernel v``: times the current row scaling ``self.u`` it is the row marginal of the
        plan at ``log_v`` *before* this half-step, which is what Sinkhorn's stopping rule
        measures. ``dual=False`` skips the semi-dual value (a logarithm per sample) and
        returns ``None`` in its place. ``u_out`` (an array ``(len(idx), n)``) receives the
        new row scaling instead of a fresh array: a fresh array of many samples is fresh
        memory, whose first write page-faults at about the cost of the pass itself.
        """
        count = len(idx)
        v = np.exp(log_v)
        u = np.empty((count, self.n)) if u_out is None else u_out
        col = np.zeros((count, self.K))
        log_rows = np.zeros(count) if dual else None
        ok = np.ones(count, dtype=bool)
        vrow = v[:, None, :]
        kernel_block = self.kernel_block(idx)

        def one(b, cols):
            block = kernel_block(b, cols)
            # errstate is per thread: set where the arithmetic runs.
            with np.errstate(divide="ignore", invalid="ignore"):
                row_sum = np.matmul(vrow, block)[:, 0, :]
                if row_sums is not None:
                    row_sums[:, cols] = row_sum
                ok_part = row_sum.min(axis=1) > 0.0
                u_block = np.divide(self.a[cols], row_sum, out=u[:, cols])
                col_part = np.matmul(block, u_block[:, :, None])[:, :, 0]
                log_rows_part = np.log(row_sum) @ self.a[cols] if dual else None
            return ok_part, col_part, log_rows_part

        with np.errstate(divide="ignore", invalid="ignore"):
            for ok_part, col_part, log_rows_part in self.workers.map(one, self.blocks):
                ok &= ok_part
                col += col_part
                if dual:
                    log_rows += log_rows_part
        col *= v
        if not dual:
            return u, col, None, ok
        return u, col, np.einsum("sk,sk->s", self.b[idx], log_v) - log_rows, ok

    def hessian(self, idx, u, log_v):
        """Negative Hessian of the semi-dual in ``log_v``, a graph Laplacian per problem.

        With ``P = diag(u) kernel diag(v)`` (rows summing to ``a``) it is
        ``diag(P^T 1) - P^T diag(1/a) P``; its off-diagonal entries are ``-W`` with
        ``W = P^T diag(1/a) P`` (the mass two components share) and, because the rows of ``P``
        sum to ``a``, its diagonal is the row sums of ``W`` off the diagonal: no difference of
        nearly equal numbers for well-separated components. ``W`` is a sum of non-negative
        terms, so single precision (above ``NARROW`` components) gives every entry to a
        relative ~1e-6; each block's Gram product is accumulated in double precision.
        """
        count = len(idx)
        v = np.exp(log_v)[:, :, None]
        scale = u / self.sqrt_a
        W = np.zeros((count, self.K, self.K))
        kernel_block = self.kernel_block(idx)

        def one(b, cols):
            weighted = self.scratch("weighted", (count, self.K, cols.stop - cols.start))
            np.multiply(kernel_block(b, cols), scale[:, None, cols], out=weighted)
            return self._weighted_gram(weighted, v)

        for gram in self.workers.map(one, self.blocks):
            W += gram
        return self._laplacian(W)

    def group_roots(self, idx, groups, f, g):
        """Exact maximisers of the semi-dual along common shifts of groups of column potentials.

        ``groups[j]`` lists boolean masks over the ``K`` columns of problem ``idx[j]``. For
        each group ``G``, the shift ``c`` of every ``g_k, k in G`` (the others fixed) with
        ``sum_i a_i sigmoid(c + l_iG) = sum_{k in G} b_k``, where ``l_iG`` is the logit of the
        sample's responsibility to the group, ``q_iG = sum_{k in G} exp(f_i + g_k - C_ik/eps)
        / a_i`` at the current iterate (rows exact): computed in the log domain from the
        costs, so no kernel floor limits it. A group that shares almost no sample with the
        other columns has almost no curvature along that shift, so Newton's step along it
        is meaningless and Sinkhorn's steps move it about one nat each, while its root can
        lie thousands of nats away. Returns the shifts as ``(len(idx), K)``.
        """
        pairs = [(j, mask) for j, masks in enumerate(groups) for mask in masks]
        # The complements of one problem's groups as rows of one matrix: their masses against
        # the sample maximum are one product with the block.
        rest_masks = [(~np.stack(masks)).astype(float) if masks else None for masks in groups]
        first = np.cumsum([0] + [len(masks) for masks in groups])
        logits = np.empty((len(pairs), self.n))
        log_kernel = self.source.prepare(idx, g)
        shift = f - self.log_a  # log q_ik = f_i - log a_i + g_k - C_ik/eps

        def one(b, cols):
            block = log_kernel(cols)
            block += shift[:, None, cols]
            # The group's log-sum-exp against its own maximum (its own rows only); the rest's
            # against the sample's largest entry, redone with its own maximum where it
            # underflows there (samples deep inside a group, more than ~700 nats from the rest).
            top = block.max(axis=1)
            scaled = np.exp(block - top[:, None, :])
            out = np.empty((len(pairs), cols.stop - cols.start))
            for j, masks in enumerate(groups):
                if not masks:
                    continue
                rests = rest_masks[j] @ scaled[j]
                for r, mask in enumerate(masks):
                    rest = rests[r]
                    with np.errstate(divide="ignore"):
                        log_rest = np.log(rest) + top[j]
                    lost = rest < UNDERFLOW
                    if lost.any():
                        log_rest[lost] = _masked_log_sum_exp(block[j][:, lost], ~mask)
                    out[first[j] + r] = _masked_log_sum_exp(block[j], mask) - log_rest
            return cols, out

        for cols, part in self.workers.map(one, self.blocks):
            logits[:, cols] = part
        shifts = np.zeros((len(idx), self.K))
        for p, (j, mask) in enumerate(pairs):
            shifts[j, mask] = _sigmoid_root(logits[p], self.a, self.b[idx[j], mask].sum())
        return shifts

    def log_column_step(self, idx, f):
        """``g = log b - LSE_i(f_i - C_ik/eps)`` in the log domain (when a column mass underflows).

        The log-sum-exp runs over the blocks with a running maximum ``top`` (the sums so far
        rescaled whenever it grows). On threads the running maxima come first (a pass of
        block maxima), then each block's exponentials against its own running maximum, added
        in block order: the same operations on the same numbers as the single loop.
        """
        count = len(idx)
        log_kernel = self.source.prepare(idx, np.zeros((count, self.K)))

        def block_of(cols):
            block = log_kernel(cols)
            block += f[:, None, cols]
            return block

        top = np.full((count, self.K), -np.inf)
        total = np.zeros((count, self.K))
        if self.workers.n_jobs == 1:
            for cols in self.blocks:
                block = block_of(cols)
                new_top = np.maximum(top, block.max(axis=2))
                total = _rescale(total, top, new_top)
                total += np.exp(block - new_top[:, :, None]).sum(axis=2)
                top = new_top
            return self.log_b[idx] - (top + np.log(total))
        tops = []
        for block_top in self.workers.map(lambda b, cols: block_of(cols).max(axis=2), self.blocks):
            top = np.maximum(top, block_top)
            tops.append(top)
        top = np.full((count, self.K), -np.inf)

        def one(b, cols):
            return np.exp(block_of(cols) - tops[b][:, :, None]).sum(axis=2)

        for new_top, part in zip(tops, self.workers.map(one, self.blocks)):
            total = _rescale(total, top, new_top)
            total += part
            top = new_top
        return self.log_b[idx] - (top + np.log(total))

    def finish(self, log_v, *, statistics=None, plan=None, release=False):
        """Last pass at column log-scaling ``log_v`` (all problems).

        Returns ``rows`` (``(S, n)``, the row sums of ``P = diag(u) kernel diag(v)``) and, as
        asked, ``P``'s statistics summed over blocks (``statistics(kernel_block, u_block, v,
        cols)`` gives a block's) and ``P`` itself written into ``plan`` (``(n, K)``, one problem).
        ``release=True`` drops each stored kernel block once it has been used (and the kernel
        from the workspace): forming the plan then needs about one kernel's memory (the
        plan's pages are only taken as its rows are written, while each used block's are
        given back) instead of a kernel plus a plan. Later passes recompute the kernel from
        the costs, as for ``store=False``.
        """
        idx = np.arange(self.S)
        v = np.exp(log_v)
        rows = np.empty((self.S, self.n))
        vectors = v[:, None, :]
        stats = None
        kernel = self.kernel
        release = release and kernel is not None
        if release:
            for key in [key for key, value in self._scratch.items() if value is kernel]:
                del self._scratch[key]
        kernel_block = self.kernel_block(idx)

        def one(b, cols):
            block = kernel_block(b, cols)
            u = self.u[:, cols]
            products = np.matmul(vectors, block)
            np.multiply(products[:, 0], u, out=rows[:, cols])
            part = None if statistics is None else statistics(block, u, v, cols)
            if plan is not None:
                weights = block[0] * v[0][:, None]
                weights *= u[0]
                plan[cols] = weights.T
            if release:
                kernel[b] = None
            return part

        for part in self.workers.map(one, self.blocks):
            if part is not None:
                stats = part if stats is None else stats + part
        if release:
            self.kernel = None
        return rows, stats


def _rescale(total, top, new_top):
    """``total * e^(top - new_top)``: sums of exponentials against ``top`` moved to ``new_top``."""
    with np.errstate(invalid="ignore"):
        total *= np.exp(np.where(np.isfinite(top), top - new_top, -np.inf))
    return total


def _masked_log_sum_exp(block, mask):
    """``log sum_{k in mask} exp(block[k, i])`` per column ``i`` of ``block`` (``(K, m)``), exactly."""
    chosen = block[mask]
    top = chosen.max(axis=0)
    return top + np.log(np.exp(chosen - top).sum(axis=0))


def _sigmoid_root(logits, a, target):
    """The ``c`` with ``sum_i a_i sigmoid(c + logits_i) = target`` (increasing in ``c``; ``0 < target < sum a``).

    Bracketed around the logit where the masses, sorted by logit, reach ``target``; then
    solved on the samples that are not saturated over the bracket: a sample with
    ``|c + logit| > SATURATED_LOGIT`` for every ``c`` in it adds ``a_i`` or nothing to within
    ``e^-40 a_i`` (a loose group's root turns on the few samples near it, not on the rest).
    """

    def excess(c):
        return special.expit(c + logits) @ a - target

    n = logits.size
    # Only the largest logits can hold the crossing: enough of them to carry ``target``.
    enough = n if a.min() <= 0.0 else min(n, int(np.ceil(target / a.min())) + 1)
    if enough < n:
        largest = np.argpartition(-logits, enough - 1)[:enough]
        order = largest[np.argsort(-logits[largest])]
    else:
        order = np.argsort(-logits)
    crossing = min(np.searchsorted(np.cumsum(a[order]), target), order.size - 1)
    centre = -logits[order[crossing]]
    width = 1.0
    low, high = centre - width, centre + width
    while excess(low) > 0.0:
        width *= 2.0
        low = centre - width
    while excess(high) < 0.0:
        width *= 2.0
        high = centre + width
    uncertain = (logits + high > -SATURATED_LOGIT) & (logits + low < SATURATED_LOGIT)
    saturated_mass = a[logits + low >= SATURATED_LOGIT].sum()
    near, near_a = logits[uncertain], a[uncertain]

    def near_excess(c):
        return special.expit(c + near) @ near_a + saturated_mass - target

    # The two functions differ by less than e^-40: a sign lost at an end means that end is the root.
    if near_excess(low) >= 0.0:
        return low
    if near_excess(high) <= 0.0:
        return high
    return optimize.brentq(near_excess, low, high, xtol=1e-8)
