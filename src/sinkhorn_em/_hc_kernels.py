"""Compiled kernels of the local hc criteria's merge loop (EII, VII, VVV; :mod:`sinkhorn_em._hc`).

Each merge of :class:`sinkhorn_em._hc._LocalCriterion` reads the smallest cost of the dense
``(m, m)`` matrix ``D`` (kept with per-row minima), computes one row of costs (the merged cluster
against every other) and writes it as a row and a column of ``D``. In numpy that is a dozen
calls on ``m``-vectors and strided column writes per merge, ~0.3 ms at ``m`` ~ 3,600, which made
the loop's Python cost the bulk of the hc start; here each step is one compiled call over the
slots. Every value goes through the floating-point operations of the numpy formulation, in the
same order (``+``, ``-``, ``*``, ``/`` and ``sqrt`` are correctly rounded in both), so the costs and
the merges are those of that formulation, bit for bit. The squared norms of the Ward vectors
follow the summation order of numpy's ``einsum`` kernel (:func:`_ward_norm`; where the
running numpy sums otherwise, the caller takes ``np.einsum``'s), and the logarithm of the costs
stays numpy's, called between the kernels (``np.log``: numpy's SIMD ``log`` and the C library's,
which compiled code calls, may differ in the last bit). Compiled with
``cache=True``: the first call on a machine compiles (3-15 s measured on the shared 2-core
machine, docs/SPEED.md), later processes load the machine code from numba's cache (~0.5 s).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def best_pair(D, rowmin, lg):
    """The pair of slots ``(i, j)``, ``i < j < lg``, of the smallest cost, and that cost.

    Of equal costs, the pair last in mclust's packed order (by ``j``, then ``i``) wins, as the
    Fortran's ``.le.`` scans. ``rowmin[r]`` is the smallest of ``D[r, :lg]``, so only the rows
    whose minimum is the overall one are scanned.
    """
    best = np.inf
    for r in range(lg):
        if rowmin[r] < best:
            best = rowmin[r]
    bi, bj = -1, -1
    for r in range(lg):
        if rowmin[r] != best:
            continue
        for c in range(lg):
            if D[r, c] == best:
                i, j = min(r, c), max(r, c)
                if j > bj or (j == bj and i > bi):
                    bi, bj = i, j
    return bi, bj, best


@njit(cache=True)
def ward_row(D, size, a, b, lg, out):
    r"""hceii's update of Ward's criterion for the cluster ``a`` + ``b`` against every slot ``k``.

    :math:`w_{k, ab} = \bigl((n_k + n_a) w_{ka} + (n_k + n_b) w_{kb} - n_k w_{ab}\bigr) / (n_k + n_a + n_b)`
    (Lance-Williams for Ward's method), with the sizes before the merge; ``out[b]`` then takes
    the value of slot ``lg - 1``, which moves into ``b``.
    """
    na, nb = size[a], size[b]
    for k in range(lg):
        nk = size[k]
        out[k] = ((nk + na) * D[a, k] + (nk + nb) * D[b, k] - nk * D[a, b]) / (nk + na + nb)
    out[b] = out[lg - 1]


@njit(cache=True, inline="always")
def _ward_norm(means, a, j, scale):
    r"""``np.einsum("p,p->", v, v)`` of :math:`v = (\bar z_a - \bar z_j) \cdot` ``scale``, in numpy's order.

    numpy's x86-64 baseline kernel (``sum_of_products_contig_contig_outstride0_two``, SSE2)
    keeps two lanes, lane ``l`` summing elements ``l, l + 2, ...``: per block of eight it adds
    its four products last first, ``x0^2 + (x2^2 + (x4^2 + (x6^2 + acc)))``; past the blocks
    one product per lane; then ``lane0 + lane1``; products and sums rounded separately (no
    fused multiply-add). The entries of ``v`` are formed as they are read (no work array, whose
    stores and loads would chain one row's sums to the next's).
    :func:`sinkhorn_em._hc._squared_norms_are_numpys` checks on the running machine that this
    is numpy's result to the last bit (other platforms have other kernels).
    """
    p = means.shape[1]
    l0 = 0.0
    l1 = 0.0
    i = 0
    while p - i >= 8:
        for k in (3, 2, 1, 0):
            x = (means[a, i + 2 * k] - means[j, i + 2 * k]) * scale
            y = (means[a, i + 2 * k + 1] - means[j, i + 2 * k + 1]) * scale
            l0 = x * x + l0
            l1 = y * y + l1
        i += 8
    while i < p:
        x = (means[a, i] - means[j, i]) * scale
        l0 = x * x + l0
        if i + 1 < p:
            y = (means[a, i + 1] - means[j, i + 1]) * scale
            l1 = y * y + l1
        i += 2
    return l0 + l1


@njit(cache=True)
def ward_norms(means, size, a, J, ward):
    r"""Squared norms (:func:`_ward_norm`) of the Ward vectors of ``a`` and each ``j = J[t]``.

    :math:`v_t = (\bar z_a - \bar z_j) \sqrt{n_a n_j / (n_a + n_j)}`, as ``_Clusters.ward``
    computes them; the vectors themselves are not kept (the caller recomputes the few that
    a determinant needs).
    """
    na = size[a]
    for t in range(J.size):
        j = J[t]
        nj = size[j]
        ward[t] = _ward_norm(means, a, j, np.sqrt(na * nj / (na + nj)))


@njit(cache=True)
def trace_arguments(size, trace, a, J, beta, alpha, ward, tr, arg):
    r"""Merged traces :math:`t_a + t_j + \|v_t\|^2` and :math:`\beta(\operatorname{tr} + \alpha) / (n_a + n_j)`.

    ``ward`` holds the squared norms :math:`\|v_t\|^2`; the logarithm of ``arg`` (taken by the
    caller) is the cost's trace term.
    """
    na = size[a]
    for t in range(J.size):
        j = J[t]
        tr[t] = trace[a] + trace[j] + ward[t]
        arg[t] = beta * (tr[t] + alpha) / (na + size[j])


@njit(cache=True)
def _logaddexp(x, y):
    # numpy's npy_logaddexp: the larger plus log1p(exp(-|x - y|)).
    if x == y:
        return x + np.log(2.0)
    d = x - y
    if d > 0:
        return x + np.log1p(np.exp(-d))
    if d <= 0:
        return y + np.log1p(np.exp(d))
    return d


@njit(cache=True)
def trace_costs(size, a, J, base, tr, ward, trace_W, trace_st, p, margin, check_det, terms, need):
    r"""The merged clusters' trace terms ``terms[t] = s * base[t]`` and which pairs need a determinant (VVV).

    ``base`` holds the trace term :math:`\log(\beta(\operatorname{tr} + \alpha)/s)`. A pair of
    merged size ``s > p`` and nonzero trace has the cost :math:`s\,\mathrm{logaddexp}(\log\det(W/s),
    \text{base})`; its determinant is needed only when the AM-GM bound :math:`\log\det(W/s) \le p
    \log(\operatorname{tr} W / (p s))`, plus ``margin`` nats, can move ``logaddexp`` off ``base``
    (see :meth:`sinkhorn_em._hc._LocalCriterion._pair_terms`). Returns the number of such pairs.
    """
    count = 0
    na = size[a]
    for t in range(J.size):
        j = J[t]
        s = na + size[j]
        terms[t] = s * base[t]
        need[t] = False
        if check_det and s > p and tr[t] != 0.0:
            bound = p * np.log((trace_W[a] + trace_st[j] + ward[t]) / (p * s))
            if _logaddexp(bound + margin, base[t]) != base[t]:
                need[t] = True
                count += 1
    return count


@njit(cache=True)
def update_costs(D, rowmin, rowarg, stale, row, term, subtract, a, b, last):
    """Cost matrix and row minima after merging slot ``b`` into ``a``, slot ``last`` moving to ``b``.

    ``row[:last]`` is the merged cluster's cost against each slot (new slot numbering), minus
    the two clusters' terms when ``subtract`` (VII, VVV: ``(row - term[a]) - term[k]``). The
    last slot's row and column move into ``b`` (Fortran's ``wardsw``); row and column ``a``
    take the new costs. ``rowmin[k]`` stays the smallest cost of row ``k`` (``rowarg[k]`` one
    slot that has it): every entry of a row but column ``a`` is an entry it had, so a new cost
    below the row's minimum is the new minimum; rows whose minimum was with ``a`` or ``b`` and
    whose new cost is not below it are rescanned, as row ``a``. ``stale`` is a work array.
    """
    lg = last + 1
    for k in range(lg):
        stale[k] = rowarg[k] == a or rowarg[k] == b
    stale[b] = stale[last]
    rowmin[b], rowarg[b] = rowmin[last], rowarg[last]
    for k in range(lg):
        if rowarg[k] == last:
            rowarg[k] = b
    for k in range(lg):
        D[b, k] = D[last, k]
    lg = last
    term_a = term[a]
    # One pass over the rows for the column writes (strided: a cache line and a page per row).
    # Row a's entries k < b are written before the column move reads D[a, last] (k = a, a < b)
    # and rewritten at k = b after it.
    for k in range(lg):
        D[k, b] = D[k, last]
        value = (row[k] - term_a) - term[k] if subtract else row[k]
        if k == a:
            value = np.inf
        D[a, k] = value
        D[k, a] = value
        if k != a and value < rowmin[k]:
            rowmin[k], rowarg[k] = value, a
            stale[k] = False
    D[b, b] = np.inf
    stale[a] = True
    for r in range(lg):
        if stale[r]:
            arg = np.argmin(D[r, :lg])
            rowarg[r], rowmin[r] = arg, D[r, arg]


@njit(cache=True)
def initial_arguments(means, size, trace, alpha, scale, lo, hi, D, ward_only):
    r"""Rows ``lo..hi-1`` of the initial costs from column ``lo`` on, up to their logarithm.

    Ward's :math:`w_{rc} = \|\bar z_r - \bar z_c\|^2 \, n_r n_c / s_{rc}` (the squared distance
    summed in order, as ``scipy.spatial.distance.cdist``), ``s_{rc} = n_r + n_c``; with
    ``ward_only`` (EII) that is the cost, written to ``D[r, c]`` and mirrored to ``D[c, r]`` for
    ``c >= hi``. Otherwise ``D[r, c]`` gets :math:`((t_r + t_c + w_{rc}) + \alpha)\,\beta / s_{rc}`,
    whose logarithm (numpy's, by the caller) :func:`initial_costs` turns into the cost.
    Four columns at a time: four independent sums in flight, each still summed in order.
    """
    m, p = means.shape
    sq = np.empty(4)
    for r in range(lo, hi):
        for c0 in range(lo, m, 4):
            width = min(4, m - c0)
            if width == 4:
                a0 = a1 = a2 = a3 = 0.0
                for k in range(p):
                    x = means[r, k]
                    d0 = x - means[c0, k]
                    d1 = x - means[c0 + 1, k]
                    d2 = x - means[c0 + 2, k]
                    d3 = x - means[c0 + 3, k]
                    a0 += d0 * d0
                    a1 += d1 * d1
                    a2 += d2 * d2
                    a3 += d3 * d3
                sq[0], sq[1], sq[2], sq[3] = a0, a1, a2, a3
            else:
                for t in range(width):
                    acc = 0.0
                    for k in range(p):
                        d = means[r, k] - means[c0 + t, k]
                        acc += d * d
                    sq[t] = acc
            for t in range(width):
                c = c0 + t
                s = size[r] + size[c]
                w = sq[t] * (size[r] * size[c] / s)
                D[r, c] = w if ward_only else ((trace[r] + trace[c] + w) + alpha) * scale / s
    if ward_only:
        for c in range(hi, m):
            for r in range(lo, hi):
                D[c, r] = D[r, c]


@njit(cache=True)
def initial_costs(D, size, term, lo, hi):
    r"""Costs :math:`(s_{rc} \log(\cdot) - T_r) - T_c` of rows ``lo..hi-1`` from their logarithms, mirrored.

    ``D[r, c]`` holds the logarithm of the trace term for ``c >= lo``; row ``c >= hi`` gets its
    entry ``D[c, r] = (s \log(\cdot) - T_c) - T_r`` (column by column: the block's rows stay in
    cache), the rows themselves ``(s \log(\cdot) - T_r) - T_c``.
    """
    m = D.shape[0]
    for c in range(hi, m):
        for r in range(lo, hi):
            D[c, r] = (D[r, c] * (size[r] + size[c]) - term[c]) - term[r]
    for r in range(lo, hi):
        for c in range(lo, m):
            D[r, c] = (D[r, c] * (size[r] + size[c]) - term[r]) - term[c]


@njit(cache=True)
def merge_moments(size, means, trace, ident, a, b, vv):
    r"""Size, mean, scatter trace and id of cluster ``a`` after absorbing ``b``.

    :math:`\bar z = (n_a \bar z_a + n_b \bar z_b) / (n_a + n_b)`, :math:`t = t_a + (t_b +
    \|v\|^2)` with ``vv`` the squared norm of the Ward vector (numpy's, the caller's), the id
    the smaller of the two.
    """
    na, nb = size[a], size[b]
    for k in range(means.shape[1]):
        means[a, k] = (na * means[a, k] + nb * means[b, k]) / (na + nb)
    size[a] = na + nb
    trace[a] += trace[b] + vv
    ident[a] = min(ident[a], ident[b])


@njit(cache=True)
def stack_factors(factor, factor_st, rank, a, b, fresh, v, out):
    """Rows of the two clusters' factors, as hcvvv reads them, on the Ward vector ``v``; their count.

    Cluster ``fresh`` (made by the previous merge) contributes its exact factor ``factor``, any
    other its stored one ``factor_st``; ``rank`` rows each.
    """
    n = 0
    for c in (a, b):
        source = factor if c == fresh else factor_st[c]
        for i in range(rank[c]):
            out[n, :] = source[i, :]
            n += 1
    out[n, :] = v
    return n + 1


@njit(cache=True)
def store_factor(h, n, factor, stored, a):
    """The merged cluster's exact factor and the factor hcvvv stores for it, from a QR; its rank.

    ``h`` is the ``(n, d)`` transpose of ``np.linalg.qr(..., mode="raw")``'s first output, whose
    upper triangle is ``R``; ``factor`` gets the first ``k = min(n, d)`` rows of ``R`` (zeros
    below), ``stored`` (slot ``a``'s stored factor) row ``t < k`` equal to ``R``'s first row
    from column ``t`` on: hcvvv's ``call dcopy(p, r(1,1), p, x(l,1), n)`` stores every row of
    the new factor as its first.
    """
    p = factor.shape[1]
    k = min(n, p)
    for i in range(p):
        for j in range(p):
            factor[i, j] = h[i, j] if i < k and j >= i else 0.0
            stored[a, i, j] = h[0, j] if i < k and j >= i else 0.0
    return k
