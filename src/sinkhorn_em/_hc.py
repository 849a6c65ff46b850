"""Model-based agglomerative hierarchical clustering, the algorithm of R mclust's ``hc()``.

Fraley (1998), "Algorithms for model-based Gaussian hierarchical clustering", SIAM J. Sci.
Comput. 20:270-281; Scrucca, Fop, Murphy & Raftery (2016), "mclust 5", R Journal 8:289-317.
The merge criteria, the data transformation and the order in which pairs are compared (hence
how exact ties are broken) follow mclust's R functions ``hc``, ``hcEII``, ``hcVII``, ``hcEEE``,
``hcVVV`` and their Fortran routines ``hceii``, ``hcvii``, ``hceee``, ``hcvvv`` (``src/mclust.f``,
mclust 6.0): each stage merges the pair of clusters whose merge increases the classification
likelihood's criterion least; clusters live in slots ``0..m-1``, the merged cluster stays in the
lower slot and the cluster of the last slot moves into the freed one (Fortran's ``wardsw``), and of
equal criteria the pair last in the packed order ``(j, i)``, ``i < j``, wins (``.le.`` scans).
Every row starts as a cluster of its own, identical rows included, as R's ``hc`` does (its
``dupPartition`` default is never passed on; see :func:`hc_merges`).
Equal means equal in this module's arithmetic: the Fortran computes costs from sqrt-scaled
differences, so costs that are mathematically tied (integer lattices) come out a few ulps apart
there, and R's pick among them can differ from ours (``test_r_breaks_exact_ties_by_the_rounding_of_its_own_arithmetic``).
VVV reproduces one more detail of hcvvv: a cluster's triangular scatter factor ``R`` is stored
with every row equal to its first row (``call dcopy( p, r(1,1), p, x(l,1), n)``), and every
merge except those with the cluster just formed reads that stored factor (row ``t`` from column
``t`` on), so mclust's determinants of such pairs are not those of the clusters' scatter
matrices; with the exact matrices one of seven tested 2-D trees departs from mclust's late in
the tree (``tests/library/test_hc.py``), with the stored ones every tested tree is mclust's.

Cost: the local criteria (EII, VII, VVV) keep the dense ``(m, m)`` matrix of merge costs with
per-row minima, so that a merge recomputes one row (and the rows whose minimum it was), not the
whole matrix as the Fortran's scan does; EEE's criterion depends on the pooled scatter and every
cost changes at each merge (one ``(m, m)`` pass per merge, as in mclust). VVV computes a pair's
determinant only where it can change the cost: ``logaddexp(log det, base)`` is ``base`` to the
last bit whenever the AM-GM bound ``det M <= (tr M / d)^d`` (plus a margin for rounding) already
gives ``base``, which on scaled data in 30 dimensions is every pair (the determinant is some 100
nats below the trace term); the costs, hence the merges, are those of computing every determinant.
The local criteria's per-merge steps and the initial matrix run as numba kernels
(:mod:`sinkhorn_em._hc_kernels`), one call per step instead of a dozen numpy calls, with the
floating-point operations of the numpy formulation in its order: merges and costs are those of
that formulation to the last bit.
Memory: the ``(m, m)`` matrix for the ``m <= subset`` rows merged, never ``(n, n)``.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.utils import check_random_state

from .gaussian import estimate_gaussian_parameters, gaussian_cost, precision_cholesky

__all__ = [
    "HC_MODELS",
    "HC_USES",
    "MCLUST_SUBSET",
    "check_hc_options",
    "hc_merges",
    "hc_transform",
    "hierarchical_partition",
    "hierarchical_subset_partition",
]

#: The models of mclust's ``hc`` for multivariate data (``mclust.options("hcModelName")`` is VVV).
HC_MODELS = ("EII", "VII", "EEE", "VVV")
#: Data transformations of mclust's ``hc(use=...)`` implemented here (default ``"SVD"``, as
#: ``mclust.options("hcUse")``); ``"VARS"`` is the data as given, ``"STD"`` centred and scaled.
HC_USES = ("SVD", "VARS", "STD")
#: ``mclust.options("subset")``: ``Mclust`` builds the tree on this many random rows when n is larger.
MCLUST_SUBSET = 2000

_FLMAX = np.finfo(float).max
_EPSMIN = 1.1102230246251565e-16  # hceee's EPSMIN
_EPSMAX = 2.2204460492503131e-16  # hcvvv/hcvii's floor on ALPHA
# Nats by which a computed log-determinant may exceed the AM-GM bound of the exact matrix
# (rounding, the determinant lemma on an ill-conditioned factor) before skipping it could
# change a merge cost: a factor e^30 ~ 1e13.
_LOGDET_MARGIN = 30.0
# Rows of the initial (m, m) cost matrix computed at a time (their logarithm is one numpy call).
_COST_BLOCK_ROWS = 128


def hc_transform(X, use="SVD"):
    r"""The data mclust's ``hc(data, use=...)`` merges.

    ``"SVD"`` (mclust's default, ``mclust.options("hcUse")``): :math:`Z_s = (X - \bar x) / s`
    column-wise (``scale``: sample standard deviations, denominator ``n - 1``), columns that
    are not finite (constant columns) dropped, then :math:`Z = Z_s V D^{-1/2}` with
    :math:`Z_s = U D V^T` the thin SVD: the scaled principal components, each divided by the
    square root of its singular value (Scrucca & Raftery 2015, "Improved initialisation of
    model-based clustering using Gaussian hierarchical partitions", Adv. Data Anal. Classif.
    9:447-460). ``"STD"``: :math:`Z_s`; ``"VARS"``: ``X`` itself. The criteria are invariant to
    the signs of the singular vectors, so LAPACK's sign choice does not matter.
    """
    X = np.asarray(X, dtype=float)
    if use == "VARS":
        return X
    if use not in HC_USES:
        raise ValueError(f"use must be one of {HC_USES} (mclust's hc transformations implemented), got {use!r}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        Z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    Z = Z[:, np.all(np.isfinite(Z), axis=0)]
    if Z.shape[1] == 0:
        raise ValueError("every feature is constant: hc has nothing to merge on; remove constant features.")
    if use == "STD":
        return Z
    _, singular, vt = np.linalg.svd(Z, full_matrices=False)
    if singular[-1] <= 0.0:
        raise ValueError(
            "the scaled data are rank deficient (a zero singular value): use='SVD' divides by it; "
            "drop collinear features (e.g. keep the leading principal components) or pass use='STD'."
        )
    return (Z @ vt.T) / np.sqrt(singular)


@functools.cache
def _squared_norms_are_numpys():
    """Whether the compiled squared norms equal ``np.einsum("jp,jp->j", v, v)`` to the last bit here.

    :func:`~sinkhorn_em._hc_kernels.ward_norms` follows the summation order of numpy's x86-64
    baseline kernel; another platform or numpy version may sum otherwise, and then the merge
    loop takes numpy's (slower) so that its costs stay those of the numpy formulation. Checked
    once per process on rows of 1 to 70 entries spanning 30 orders of magnitude.
    """
    from ._hc_kernels import ward_norms

    rng = np.random.default_rng(0)
    size = rng.integers(1, 100, size=64).astype(float)
    for p in range(1, 71):
        means = rng.normal(size=(64, p)) * np.exp(rng.normal(size=(64, p)) * 5)
        ward = np.empty(64)
        ward_norms(means, size, 0, np.arange(64), ward)
        v = np.sqrt(size[0] * size / (size[0] + size))[:, None] * (means[0] - means)  # _Clusters.ward
        if not np.array_equal(ward, np.einsum("jp,jp->j", v, v)):
            return False
    return True


def _distinct_rows(Z):
    """Number of distinct rows of ``Z`` (exactly equal rows counted once)."""
    return np.unique(Z, axis=0).shape[0]


class _Clusters:
    """Sizes, means and (for VII/VVV) traces and scatter factors of the clusters in slots 0..m-1.

    VVV keeps, per cluster, an upper-triangular factor ``F`` (``min(n_k - 1, d)`` nonzero rows)
    with ``F^T F = W_k`` (Fortran's ``R``, kept by Givens rotations there, by a QR of the
    stacked factors here) and, for clusters of more than ``d`` points, the inverse of the
    Cholesky factor of ``W_k`` (for the determinant lemma).
    """

    def __init__(self, Z, groups, m, scatter):
        p = Z.shape[1]
        self.p = p
        self.size = np.bincount(groups, minlength=m).astype(float)
        sums = np.zeros((m, p))
        np.add.at(sums, groups, Z)
        self.means = sums / self.size[:, None]
        # Identical rows: zero scatter, zero trace.
        self.trace = np.zeros(m)
        # Per slot, side by side so that moving a slot is one copy: the factor and W as hcvvv
        # stores them for later merges (see merge) and the inverse Cholesky factor of that W.
        # Identical rows have zero scatter, so at the start the factors and W are zero and W
        # has no inverse (NaN, as _inverse_cholesky gives a singular W): a group of more than
        # d identical rows must not pass for an invertible W in the determinant lemma.
        self._mats = np.empty((m, 3, p, p)) if scatter else None
        if scatter:
            # Written at once, not zero pages faulted in one slot per merge (measured ~0.5 s at m = 3600).
            self._mats[:, :2] = 0.0
            self._mats[:, 2] = np.nan
        self.factor_st, self.W_st, self.inv_st = [self._mats[:, i] for i in range(3)] if scatter else [None] * 3
        # The exact factor is read only for the cluster made by the last merge (``fresh``: the
        # next merge's QR and its own row of costs), so it, its W and the inverse Cholesky
        # factor of that W are kept for that one slot (an unmerged slot's are zero).
        self.fresh = -1
        self.factor = np.zeros((p, p)) if scatter else None
        self._fresh_W = self._fresh_inv = None
        self.rank = np.zeros(m, dtype=int)  # nonzero rows of factor
        # Traces of W and W_st (the determinant's AM-GM bound, see _LocalCriterion._pair_terms), and
        # whether W_st / inv_st of a slot are up to date: they are computed when a merge
        # cost first needs them (most merges need none), from the same W, hence the same values.
        self.trace_W = np.zeros(m)
        self.trace_st = np.zeros(m)
        self.inv_ready = np.ones(m, dtype=bool)
        self.id = np.arange(m)  # initial cluster held by each slot (its smallest member)
        self._stack = np.empty((2 * p + 1, p))  # work array of the factors a merge's QR stacks

    def ward(self, a, J):
        """Ward vectors ``v = sqrt(n_a n_j / n_aj) (m_a - m_j)`` of ``a`` and slots ``J`` (array), and their squared norms."""
        na, nj = self.size[a], self.size[J]
        v = np.sqrt(na * nj / (na + nj))[:, None] * (self.means[a][None, :] - self.means[J])
        return v, np.einsum("jp,jp->j", v, v)

    def merge(self, a, b, last, v, fresh=-1):
        """Cluster ``b`` into ``a``; the cluster of slot ``last`` moves into slot ``b``.

        VVV: the merged factor is the QR factor of the two clusters' factors stacked on ``v``,
        each as hcvvv reads it: the exact factor for the cluster made by the previous merge
        (``fresh``, still in the Fortran's work array ``r``), the stored one otherwise.
        """
        from ._hc_kernels import merge_moments, stack_factors, store_factor

        merge_moments(self.size, self.means, self.trace, self.id, a, b, float(v @ v))
        arrays = [self.size, self.means, self.trace, self.id, self.rank]
        if self.factor is not None:
            n = stack_factors(self.factor, self.factor_st, self.rank, a, b, fresh, v, self._stack)
            # mode="raw": LAPACK's geqrf, R in the upper triangle of the transposed output.
            h = np.linalg.qr(self._stack[:n], mode="raw")[0].T
            k = store_factor(h, n, self.factor, self.factor_st, a)
            self.fresh = a
            self._fresh_W = self._fresh_inv = None
            self.rank[a] = k
            # tr(F^T F) is the sum of F's squares (equal up to rounding, which the bound's margin covers).
            self.trace_W[a] = np.einsum("ij,ij->", self.factor[:k], self.factor[:k])
            self.trace_st[a] = np.einsum("ij,ij->", self.factor_st[a], self.factor_st[a])
            self.inv_ready[a] = False
            arrays += [self._mats, self.trace_W, self.trace_st, self.inv_ready]
        for arr in arrays:
            arr[b] = arr[last]

    def ready_inverses(self, slots):
        """Compute ``W_st`` and ``inv_st`` of ``slots`` where a merge made them stale."""
        for c in np.atleast_1d(slots)[~self.inv_ready[slots]]:
            self.W_st[c] = self.factor_st[c].T @ self.factor_st[c]
            self.inv_st[c] = self._inverse_cholesky(self.W_st[c]) if self.size[c] > self.p else np.nan
            self.inv_ready[c] = True

    def exact(self, a):
        """Exact factor, ``W`` and inverse Cholesky factor of ``W`` of slot ``a`` (fresh or unmerged)."""
        if a != self.fresh:
            if self.rank[a] != 0:
                raise RuntimeError(f"slot {a} is neither the last merged cluster nor unmerged")
            zero = np.zeros((self.p, self.p))
            return zero, zero, np.full((self.p, self.p), np.nan)
        if self._fresh_W is None:
            k = self.rank[a]
            self._fresh_W = self.factor[:k].T @ self.factor[:k]
            big = self.size[a] > self.p
            self._fresh_inv = self._inverse_cholesky(self._fresh_W) if big else np.full((self.p, self.p), np.nan)
        return self.factor, self._fresh_W, self._fresh_inv

    @staticmethod
    def _inverse_cholesky(W):
        try:
            return np.linalg.inv(np.linalg.cholesky(W))
        except np.linalg.LinAlgError:
            return np.full(W.shape, np.nan)


class _LocalCriterion:
    """EII, VII and VVV: the cost of merging two clusters depends on those two clusters only."""

    def __init__(self, model, Z, groups, m):
        n, p = Z.shape
        self.model, self.p = model, p
        self.cl = _Clusters(Z, groups, m, scatter=(model == "VVV"))
        # Work arrays of one row of costs (see _pair_terms), allocated once for all merges.
        self._slots = np.arange(m)
        self._ward, self._tr, self._arg, self._terms = np.empty((4, m))
        self._need = np.empty(m, dtype=bool)
        # EII has neither alpha, beta nor cluster terms (its costs are Ward's).
        self.alpha, self.beta, self.term = 0.0, 1.0, np.zeros(m)
        if model in ("VII", "VVV"):
            # hcVII/hcVVV: alpha = traceW(data / sqrt(n p)), floored at EPSMAX; beta = 1.
            centred = Z - Z.mean(axis=0)
            self.alpha = max(float(np.einsum("ij,ij->", centred, centred)) / (n * p), _EPSMAX)
            self.beta = 1.0
            self.term = np.array([self._term(s, 0.0, None) for s in self.cl.size])
        self.D = self._initial_costs(m)

    def _initial_costs(self, m):
        r"""All pair costs at the start.

        With :math:`s_{ij} = n_i + n_j` and Ward's :math:`w_{ij} = \frac{n_i n_j}{s_{ij}}
        \|\bar z_i - \bar z_j\|^2` (squared distances summed in order as ``cdist``, differences
        taken directly as the Fortran's ``ddot``, not from a Gram matrix; compiled,
        :func:`~sinkhorn_em._hc_kernels.initial_arguments`): EII :math:`w_{ij}`; VII and VVV
        :math:`s_{ij} \log\bigl(\beta (t_i + t_j + w_{ij} + \alpha) / s_{ij}\bigr) - T_i - T_j`
        (traces :math:`t`, cluster terms :math:`T`); then, for VVV, the pairs of merged size
        above ``d`` (only when started from a partition with groups) row by row with their determinants.
        """
        from ._hc_kernels import initial_arguments, initial_costs

        cl = self.cl
        size = cl.size
        scale = self.beta if self.model == "VVV" else 1.0
        D = np.empty((m, m))
        eii = self.model == "EII"
        # Blocks of rows from the diagonal on (the kernels mirror them below it), so that the
        # logarithm, numpy's, runs on a few MB at a time.
        for lo in range(0, m, _COST_BLOCK_ROWS):
            hi = min(lo + _COST_BLOCK_ROWS, m)
            initial_arguments(cl.means, size, cl.trace, self.alpha, scale, lo, hi, D, eii)
            if not eii:
                np.log(D[lo:hi, lo:], out=D[lo:hi, lo:])
                initial_costs(D, size, self.term, lo, hi)
        np.fill_diagonal(D, np.inf)
        if self.model == "VVV" and 2 * size.max() > self.p:
            for a in np.flatnonzero(size + size.max() > self.p):
                J = np.flatnonzero((size[a] + size > self.p) & (np.arange(m) != a))
                D[a, J] = D[J, a] = self.row(a, J)
        return D

    def _term(self, s, tr, logdet):
        """Per-cluster term of hcvii / vvvtij (``s`` points, scatter trace ``tr``, ``log det(W / s)``)."""
        if self.model == "VII":
            return s * np.log((tr + self.alpha) / s)
        base = self.beta * (tr + self.alpha) / s
        if logdet is None:
            return s * np.log(base)
        return s * np.logaddexp(logdet, np.log(base))

    def row(self, a, J):
        """Costs of merging the cluster of slot ``a`` with those of slots ``J`` (index array or slice)."""
        J = self._slots[J] if isinstance(J, slice) else np.asarray(J)
        terms = self._pair_terms(a, J)
        if self.model == "EII":
            return terms.copy()
        return terms - self.term[a] - self.term[J]

    def _pair_terms(self, a, J):
        r"""The merged clusters' terms :math:`s_{aj} \log(\cdot)` of ``a`` with each of ``J``, in a work array.

        EII: Ward's criterion. VII: :math:`s \log\bigl((\operatorname{tr} + \alpha) / s\bigr)`.
        VVV: :math:`s\,\mathrm{logaddexp}\bigl(\log\det(W/s), \log(\beta(\operatorname{tr} +
        \alpha)/s)\bigr)`, the determinant omitted (``-inf``) for ``s <= d`` or a zero trace.
        The per-pair arithmetic is compiled (:mod:`sinkhorn_em._hc_kernels`); the logarithm of the
        trace term is numpy's, and the rare determinants are computed here (:meth:`_logdets`).
        """
        from ._hc_kernels import trace_arguments, trace_costs, ward_norms

        cl, n = self.cl, J.size
        ward, tr, arg = self._ward[:n], self._tr[:n], self._arg[:n]
        if _squared_norms_are_numpys():
            ward_norms(cl.means, cl.size, a, J, ward)
        else:
            ward[:] = cl.ward(a, J)[1]
        if self.model == "EII":
            return ward
        trace_arguments(cl.size, cl.trace, a, J, self.beta, self.alpha, ward, tr, arg)
        base = np.log(arg, out=arg)
        terms, need = self._terms[:n], self._need[:n]
        # The determinant term is negligible (logaddexp returns ``base`` to the last bit) when even
        # its AM-GM bound, det(M) <= (tr M / d)^d, does; with a margin of _LOGDET_MARGIN nats for
        # rounding in the computed log-determinants. On the SVD scaled DLPFC features the bound is
        # 100 nats below ``base`` or more, so this skips every determinant; a singular M (-inf)
        # also leaves ``base``.
        count = trace_costs(
            cl.size,
            a,
            J,
            base,
            tr,
            ward,
            cl.trace_W,
            cl.trace_st,
            self.p,
            _LOGDET_MARGIN,
            self.model == "VVV",
            terms,
            need,
        )
        if count:
            big = np.flatnonzero(need)
            s = cl.size[a] + cl.size[J[big]]
            v = cl.ward(a, J[big])[0]
            terms[big] = s * np.logaddexp(self._logdets(a, J[big], v, s), base[big])
        return terms

    def _logdets(self, a, J, v, s):
        """``log det((W_a + W_j + v v^T) / s)``; ``-inf`` for a singular matrix (vvvtij's -FLMAX).

        When one of the two clusters has more than ``d`` points (``W`` invertible), the matrix
        determinant lemma on its Cholesky factor ``L``: ``log det W + log det(I + H H^T)`` with
        ``H = G L^{-T}`` and ``G`` the other cluster's factor stacked on ``v`` (``r + 1`` rows), a
        ``(r + 1)``-square determinant instead of a ``d``-square one.
        """
        cl, p = self.cl, self.p
        out = np.full(J.size, np.nan)
        cl.ready_inverses(J)
        factor_a, W_a, inv_a = cl.exact(a)
        big_a = cl.size[a] > p and np.all(np.isfinite(inv_a))
        big_j = (cl.size[J] > p) & np.isfinite(cl.inv_st[J, 0, 0])
        small_rank = cl.rank[J] + 1 <= p // 2
        lemma_a = big_a & small_rank if big_a else np.zeros(J.size, dtype=bool)
        lemma_j = ~lemma_a & big_j & (cl.rank[a] + 1 <= p // 2)
        if np.any(lemma_a):
            idx = np.flatnonzero(lemma_a)
            inv = inv_a
            base = -2.0 * np.log(np.abs(np.diag(inv))).sum()
            rows = cl.rank[J[idx]] + 1
            # Factors padded with zero rows (which leave det(I + H H^T) unchanged) in buckets of
            # sizes 1, 2, 4, 8, ...: padding all to the largest would cost ten times more.
            bucket = np.ceil(np.log2(rows)).astype(int)
            for level in np.unique(bucket):
                sel = idx[bucket == level]
                R = int(cl.rank[J[sel]].max()) + 1
                if R == 1:  # singletons: 1 + v^T W_a^{-1} v
                    h = v[sel] @ inv.T
                    out[sel] = base + np.log1p(np.einsum("jp,jp->j", h, h))
                    continue
                G = np.concatenate([cl.factor_st[J[sel], : R - 1], v[sel, None, :]], axis=1)
                out[sel] = base + self._logdet_identity_plus(G @ inv.T)
        if np.any(lemma_j):
            idx = np.flatnonzero(lemma_j)
            inv = cl.inv_st[J[idx]]
            base = -2.0 * np.log(np.abs(np.diagonal(inv, axis1=1, axis2=2))).sum(axis=1)
            R = int(cl.rank[a]) + 1
            G = np.concatenate([np.broadcast_to(factor_a[: R - 1], (idx.size, R - 1, p)), v[idx, None, :]], axis=1)
            H = np.matmul(G, np.swapaxes(inv, 1, 2))
            out[idx] = base + self._logdet_identity_plus(H)
        idx = np.flatnonzero(~(lemma_a | lemma_j))
        if idx.size:
            W = cl.W_st[J[idx]] + W_a + v[idx, :, None] * v[idx, None, :]
            try:
                # Cholesky: half LU's work; a singular stack (rare) goes to slogdet.
                chol = np.linalg.cholesky(W)
                out[idx] = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
            except np.linalg.LinAlgError:
                sign, logdet = np.linalg.slogdet(W)
                out[idx] = np.where(sign > 0, logdet, -np.inf)
        return out - p * np.log(s)

    @staticmethod
    def _logdet_identity_plus(H):
        """``log det(I + H H^T)`` for a stack ``H`` of shape (J, r, d)."""
        if H.shape[1] == 1:
            return np.log1p(np.einsum("jrp,jrp->j", H, H))
        M = np.matmul(H, np.swapaxes(H, 1, 2))
        M[:, np.arange(H.shape[1]), np.arange(H.shape[1])] += 1.0
        return np.linalg.slogdet(M)[1]

    def merges(self, count):
        """``count`` merges, each as the pair of initial-cluster ids it joins.

        A merge reads the smallest cost (:func:`~sinkhorn_em._hc_kernels.best_pair`), merges the
        clusters, computes the merged cluster's row of costs (hceii's Lance-Williams update for
        EII, :meth:`_pair_terms` otherwise) and writes it into ``D``, keeping the row minima
        (:func:`~sinkhorn_em._hc_kernels.update_costs`).
        """
        from ._hc_kernels import best_pair, update_costs, ward_row

        cl, D = self.cl, self.D
        lg = D.shape[0]
        rowarg = D.argmin(axis=1)
        rowmin = D[np.arange(lg), rowarg]
        stale = np.empty(lg, dtype=bool)
        self.costs = []
        out = []
        fresh = -1
        # log(0) and 0/0 of clusters with zero scatter give -inf / nan costs the minima skip.
        with np.errstate(divide="ignore", invalid="ignore"):
            for _ in range(count):
                a, b, best = best_pair(D, rowmin, lg)
                out.append((int(cl.id[a]), int(cl.id[b])))
                self.costs.append(best)
                last = lg - 1
                na, nb = cl.size[a], cl.size[b]
                v = np.sqrt(na * nb / (na + nb)) * (cl.means[a] - cl.means[b])  # cl.ward(a, [b])
                if self.model == "EII":
                    # Before the merge: it reads the two clusters' sizes and costs.
                    ward_row(D, cl.size, a, b, lg, self._terms)
                if self.model == "VVV":
                    # hcvvv's tmop: the term of the merged cluster is the chosen cost plus the two terms.
                    self.term[a] = best + self.term[a] + self.term[b]
                cl.merge(a, b, last, v, fresh)
                fresh = a
                if self.model == "VII":
                    self.term[a] = self._cluster_term(a)
                if self.model in ("VII", "VVV"):
                    self.term[b] = self.term[last]
                lg -= 1
                if lg < 2:
                    break
                # The merged cluster's costs with every slot, in the slots' new numbering (slot b
                # now holds the former last cluster, whose costs ward_row moved too).
                row = self._terms if self.model == "EII" else self._pair_terms(a, self._slots[:lg])
                update_costs(D, rowmin, rowarg, stale, row, self.term, self.model != "EII", a, b, last)
        return out

    def _cluster_term(self, a):
        cl = self.cl
        s, tr = cl.size[a], cl.trace[a]
        if self.model == "VII" or s <= self.p or tr == 0.0:
            return self._term(s, tr, None)
        sign, logdet = np.linalg.slogdet(cl.scatter(a))
        return self._term(s, tr, logdet - self.p * np.log(s) if sign > 0 else None)


class _EEECriterion:
    """hceee: the pooled within-cluster scatter ``W`` of the data scaled by ``1/sqrt(n)``.

    Three stages, as the Fortran: while fewer than ``p - 1`` merges have been made (``q < p``)
    ``W`` is singular and the pair minimising ``tr(W)`` merges (Ward); then, while
    ``log det W < log(tr(W_total) / (n p))``, the pair minimising ``log(det W + tr W)`` (unless
    the smallest ``log det`` is already above that level, then the pair minimising it); then
    the pair minimising ``det(W + v v^T)``, i.e. ``v^T W^{-1} v`` (Ward's criterion in
    coordinates whitened by the current ``W``). A merge adds ``v v^T`` to ``W`` (Fraley 1998).
    """

    def __init__(self, Z, groups, m):
        n, p = Z.shape
        self.p = p
        x = Z / np.sqrt(n)
        self.cl = _Clusters(x, groups, m, scatter=False)
        centred = x - x.mean(axis=0)
        trc0 = float(np.einsum("ij,ij->", centred, centred)) / p
        self.delog = np.log(trc0 + _EPSMIN)
        self.W = np.zeros((p, p))
        # Fortran's q: 1, plus 2 per row beyond the initial clusters (its simulated merges of a given
        # partition; hc_merges starts from singletons, n == m), plus 1 per merge.
        self.q = 1 + 2 * (n - m)
        self.rank = 0
        self.trcw = 0.0
        self.detw = -_FLMAX

    def _pairs(self, lg):
        """Ward's costs of all pairs ``(j, i)``, ``i < j < lg`` (row j), and the Ward vectors' scale."""
        cl = self.cl
        means = cl.means[:lg]
        size = cl.size[:lg]
        factor = size[:, None] * size[None, :] / (size[:, None] + size[None, :])
        return means, factor

    @staticmethod
    def _gram_distance(y):
        g = y @ y.T
        sq = np.diag(g)
        return np.maximum(sq[:, None] + sq[None, :] - 2.0 * g, 0.0)

    def _logdets(self, means, factor):
        """``log det(W + v v^T)`` of every pair (``-inf`` where it is singular).

        The rank of ``W`` is its numerical rank (eigenvalues above ``p eps`` times the largest,
        as ``numpy.linalg.matrix_rank``), at most the number of nonzero Ward vectors added
        (``self.rank``, which skips the eigendecomposition while it is below ``p - 1``). The two
        differ with duplicated rows: merging copies of a row adds a Ward vector that is zero
        but for rounding (about 1e-17), so ``W`` is singular and its computed eigenvalues are
        rounding residues (zero, or of either sign about 1e-35); taken as a full rank they
        gave NaN criteria. hceee's Givens factor turns those residues into finite log
        determinants far below ``DELOG`` (-166 where the exact value is ``-inf``), which choose
        as ``-inf`` does (``log(exp(d) + t)`` is ``log t`` to the last bit).
        """
        p = self.p
        if min(self.rank, p) < p - 1:
            return np.full(factor.shape, -np.inf)
        lam, Q = np.linalg.eigh(self.W)
        rank = int(np.sum(lam > lam[-1] * p * np.finfo(float).eps)) if lam[-1] > 0.0 else 0
        if rank < p - 1:
            return np.full(factor.shape, -np.inf)
        if rank == p - 1:
            # W's null vector e: det(W + v v^T) = pdet(W) (e^T v)^2.
            beta = means @ Q[:, 0]
            b2 = factor * (beta[:, None] - beta[None, :]) ** 2
            with np.errstate(divide="ignore"):
                return np.log(lam[1:]).sum() + np.log(b2)
        y = (means @ Q) / np.sqrt(lam)
        return np.log(lam).sum() + np.log1p(factor * self._gram_distance(y))

    def merges(self, count):
        cl, p = self.cl, self.p
        lg = cl.size.size
        lower = np.tril(np.ones((lg, lg), dtype=bool), k=-1)
        out = []
        for _ in range(count):
            means, factor = self._pairs(lg)
            mask = lower[:lg, :lg]
            ward = factor * self._gram_distance(means)
            t = self.trcw + ward
            if self.q < p:
                crit = np.maximum(t, _EPSMIN)
                j, i = _last_argmin(crit, mask)
                self.trcw = crit[j, i]
            else:
                self.q += 1
                d = self._logdets(means, factor)
                if self.detw < self.delog:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        zz = np.maximum(t, _EPSMIN)
                        z = np.where(np.isneginf(d), np.log(zz), np.logaddexp(d, np.log(zz)))
                    z = np.where(t == 0.0, -_FLMAX, z)
                    jd, id_ = _last_argmin(d, mask)
                    if d[jd, id_] < self.delog:
                        j, i = _last_argmin(z, mask)
                    else:
                        j, i = jd, id_
                    self.trcw, self.detw = t[j, i], d[j, i]
                else:
                    j, i = _last_argmin(d, mask)
                    self.trcw, self.detw = t[j, i], d[j, i]
            a, b = i, j
            out.append((int(cl.id[a]), int(cl.id[b])))
            v, _ = cl.ward(a, np.array([b]))
            v = v[0]
            if self.q < p:
                self.q += 1
            if np.any(v != 0.0):
                self.rank += 1
            self.W += np.outer(v, v)
            cl.merge(a, b, lg - 1, v)
            lg -= 1
            if lg < 2:
                break
        return out


def _last_argmin(C, mask):
    """``(j, i)`` of the smallest ``C[j, i]`` over ``mask``, the last in row-major (packed) order."""
    flat = np.where(mask, C, np.inf).ravel()
    idx = flat.size - 1 - int(np.argmin(flat[::-1]))
    return divmod(idx, C.shape[1])


def check_hc_options(model, subset, n_clusters, *, model_name="hc model", subset_name="subset"):
    """Reject an hc model mclust's ``hc`` does not have, or a subset too small for ``n_clusters``.

    ``model_name`` and ``subset_name`` are what the caller calls them (the estimator's
    ``hc_model`` and ``hc_subset``), so the message names the setting to change.
    """
    if model not in HC_MODELS:
        raise ValueError(
            f"{model_name} must be one of {HC_MODELS} (mclust's hc models for multivariate data), got {model!r}; "
            "use 'VVV' (mclust's default, mclust.options('hcModelName')) or 'EEE'."
        )
    smallest = max(2, n_clusters)
    if subset is not None and (not isinstance(subset, (int, np.integer)) or subset < smallest):
        raise ValueError(
            f"{subset_name} must be None (all rows) or an integer >= {smallest} (the tree on the subset needs "
            f"at least n_clusters={n_clusters} rows), got {subset!r}; increase {subset_name} (mclust's "
            "default is 2000)."
        )


def hc_merges(Z, n_clusters=1, model="VVV"):
    """Merge sequence of mclust's ``hc`` on ``Z`` (already transformed), down to ``n_clusters``.

    Returns ``(groups, merges)``: the initial cluster of each row and the merges in order, each
    as the pair of initial-cluster ids ``(a, b)``, ``a < b``, of the smallest rows of the two
    clusters it joins. Every row starts as a cluster of its own, identical rows included, as in
    R: ``hc``'s default ``partition = dupPartition(data)`` (documented since mclust 5.4.8 as
    keeping duplicates in one group) is never evaluated, because ``hc`` forwards to ``hcVVV``
    etc. only the arguments it was called with (``match.call``), and their ``partition = NULL``
    is ``1:n`` (mclust 6.0.0, installed here, and the source of 6.1.3:
    ``attr(hc(X), "initialPartition")`` is ``1:n`` with duplicated rows). Copies of a row then
    need not merge with each other first: ``n_k >= 2`` copies (zero scatter) joined by a point at
    Ward distance ``w`` have a rank-one scatter, singular for ``d >= 2``, so the determinant is
    omitted (or, computed, a negligible residue) and the cost is ``(n_k + 1) log((w + alpha) / (n_k + 1)) - n_k log(alpha / n_k) -
    log(alpha)`` (``beta = 1``), below the ``-2 log 2`` of two single copies when ``w`` is small
    against ``alpha``; such a cluster absorbs neighbours, and other rows' copies, before those
    copies meet. Hence ``groups`` is ``0..n-1``.
    """
    check_hc_options(model, None, n_clusters)
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise ValueError(
            "hc needs data with at least two features (mclust starts one-dimensional data from quantiles "
            f"instead); got shape {Z.shape}."
        )
    distinct = _distinct_rows(Z)
    if n_clusters > distinct:
        raise ValueError(
            f"n_clusters={n_clusters} exceeds the number of distinct rows ({distinct}): some clusters would "
            "hold only copies of a point another cluster holds; reduce n_components or use a larger subset."
        )
    m = Z.shape[0]
    groups = np.arange(m)
    if m == n_clusters:
        return groups, []
    engine = _EEECriterion(Z, groups, m) if model == "EEE" else _LocalCriterion(model, Z, groups, m)
    merges = engine.merges(m - n_clusters)
    return groups, [(min(a, b), max(a, b)) for a, b in merges]


def _cut(groups, merges, m, n_clusters):
    """Labels ``0..K-1`` of the rows after the first ``m - K`` merges, numbered by first occurrence."""
    parent = np.arange(m)
    for a, b in merges[: m - n_clusters]:
        parent[parent == b] = a
    labels = parent[groups]
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=int)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


#: The covariance type of the library whose M-step has the structure of each hc model (EII:
#: spherical variances pooled over the clusters).
_COVARIANCE_OF = {"VVV": "full", "EEE": "tied", "VII": "spherical", "EII": "spherical"}
# Rows scored at a time when the subset's partition is extended to all rows.
_MAP_BLOCK_ROWS = 8192


def _gaussian_map(X, labels, X_all, K, model):
    """Most probable cluster of each row of ``X_all`` under the M-step of ``X``'s hard partition ``labels``.

    The covariance structure is the hc model's: VVV one matrix per cluster, EEE one pooled
    matrix, VII one variance per cluster, EII one pooled variance; proportions ``n_k / n``
    (mclust's ``mstep`` on the subset followed by ``estep`` on all rows, as ``mclustBIC``
    does when ``n > mclust.options("subset")``). The M-step and the densities are the
    library's (:func:`~sinkhorn_em.gaussian.estimate_gaussian_parameters`,
    :func:`~sinkhorn_em.gaussian.gaussian_cost`), with a ridge of 1e-10 of the data's mean
    variance so that a cluster of at most ``d`` rows still has a density.
    """
    covariance_type = _COVARIANCE_OF[model]
    resp = np.zeros((labels.size, K))
    resp[np.arange(labels.size), labels] = 1.0
    ridge = 1e-10 * float(np.var(X, axis=0).mean())
    counts, means, covariances = estimate_gaussian_parameters(X, resp, ridge, covariance_type)
    if model == "EII":
        covariances = np.full(K, np.average(covariances, weights=counts))
    prec_chol = precision_cholesky(covariances, covariance_type)
    log_proportions = np.log(counts / counts.sum())
    out = np.empty(X_all.shape[0], dtype=int)
    for start in range(0, X_all.shape[0], _MAP_BLOCK_ROWS):
        block = X_all[start : start + _MAP_BLOCK_ROWS]
        cost = gaussian_cost(block, means, covariances, covariance_type, prec_chol=prec_chol)
        out[start : start + block.shape[0]] = np.argmax(log_proportions - cost, axis=1)
    return out


def hierarchical_partition(X, n_clusters, model="VVV", use="SVD", subset=MCLUST_SUBSET, random_state=None):
    r"""Partition of ``X`` into ``n_clusters`` by mclust's model-based agglomerative clustering.

    The tree of ``hc(X, modelName=model, use=use)`` (R package mclust; Fraley 1998;
    Scrucca et al. 2016) cut at ``n_clusters``: ``hclass(hc(...), n_clusters)``. Each merge
    joins the two clusters whose union increases least the model's classification criterion
    (Banfield & Raftery 1993):

    * ``"EII"``: Ward's sum of squares, :math:`\frac{n_i n_j}{n_i + n_j}\|\bar z_i - \bar z_j\|^2`;
    * ``"VII"``: :math:`\sum_k n_k \log\bigl((\operatorname{tr} W_k + \alpha) / n_k\bigr)`;
    * ``"VVV"`` (mclust's default, ``mclust.options("hcModelName")``):
      :math:`\sum_k n_k \log\bigl(\det(W_k / n_k) + \beta(\operatorname{tr} W_k + \alpha)/n_k\bigr)`,
      the determinant omitted for clusters of at most ``d`` points;
    * ``"EEE"``: :math:`\det W` of the pooled scatter (trace, then trace plus determinant, while
      it is singular or small; see :class:`_EEECriterion`),

    with :math:`W_k` the scatter matrix of cluster ``k``, :math:`\alpha = \operatorname{tr}
    W / (n d)` of all the data and :math:`\beta = 1` (mclust's ``hcVVV``/``hcVII`` defaults).

    Parameters
    ----------
    X : array-like of shape (n, d), d >= 2
    n_clusters : int
    model : {"VVV", "EEE", "VII", "EII"}, default="VVV"
    use : {"SVD", "STD", "VARS"}, default="SVD"
        Transformation of the data before merging (:func:`hc_transform`; mclust's
        ``mclust.options("hcUse")`` default is ``"SVD"``).
    subset : int or None, default=2000
        When ``n > subset``, the tree is built on ``subset`` rows drawn without replacement
        (``mclust.options("subset")`` is 2000, and ``mclustBIC`` then runs ``hc`` on
        ``data[subset, ]``) and every other row goes to its most probable cluster under one
        E-step from the Gaussian parameters (hc model's covariance structure) of the subset's
        partition. ``None`` merges all rows (memory and time :math:`O(n^2)`). Must be at least
        ``n_clusters``.
    random_state : int, RandomState or None
        Draws the subset (mclust draws it with R's ``sample``; the subsets differ).

    Returns
    -------
    labels : ndarray of shape (n,)
        Cluster of each row, ``0..n_clusters-1``, numbered by first occurrence.
    """
    X = np.asarray(X, dtype=float)
    rows, labels = hierarchical_subset_partition(X, n_clusters, model, subset, random_state, use=use)
    if rows is None:
        return labels
    out = _gaussian_map(X[rows], labels, X, n_clusters, model)
    out[rows] = labels
    return out


def hierarchical_subset_partition(X, n_clusters, model="VVV", subset=MCLUST_SUBSET, random_state=None, use="SVD"):
    """The rows the tree is built on (``None``: all) and their partition; see :func:`hierarchical_partition`."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}.")
    n = X.shape[0]
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values; remove or impute those rows before the hc start.")
    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"n_clusters must be a positive integer, got {n_clusters!r}.")
    check_hc_options(model, subset, n_clusters)
    rows = None
    if subset is not None and n > subset:
        rng = check_random_state(random_state)
        rows = np.sort(rng.choice(n, size=subset, replace=False))
    groups, merges = hc_merges(hc_transform(X if rows is None else X[rows], use), n_clusters, model)
    return rows, _cut(groups, merges, groups.max() + 1, n_clusters)
