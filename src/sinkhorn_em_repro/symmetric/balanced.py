"""The balanced E-step of two-component models: the one K = 2 solver and the authors' Sinkhorn sweeps.

:func:`solve_balanced_offset` solves the scalar equation to which every balanced entropic
projection onto two columns reduces. The symmetric model (:func:`balanced_log_odds`,
:func:`symmetric_eot_loss`, :func:`sinkhorn_em_repro.symmetric.run_symmetric`) and the
two-free-means landscape (:func:`sinkhorn_em_repro.experiments.landscape.two_component_losses`)
both use it. :func:`sinkhorn_sweeps_plan` is the authors' alternative: a fixed number of
Sinkhorn sweeps.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

__all__ = [
    "balanced_log_odds",
    "sinkhorn_sweeps_plan",
    "solve_balanced_offset",
    "symmetric_eot_loss",
]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def _as_batch(x, sample_weights):
    """Validate data (B, N) or (N,) and sample weights; return float arrays (B|1, N)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (N,) or (B, N) with N >= 1, got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf; remove or impute those points first.")
    if sample_weights is None:
        q = np.full((1, x.shape[1]), 1.0 / x.shape[1])
    else:
        q = np.asarray(sample_weights, dtype=float)
        if q.ndim == 1:
            q = q[None, :]
        if q.shape[-1] != x.shape[1] or q.ndim != 2:
            raise ValueError(f"sample_weights must have shape (N,) or (B, N) matching x {x.shape}, got {q.shape}.")
        if np.any(q < 0) or not np.all(np.isfinite(q)):
            raise ValueError("sample_weights must be finite and non-negative.")
        if not np.allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-12):
            raise ValueError("each row of sample_weights must sum to 1 (the coupling has total mass 1).")
    return x, q


def _check_alpha(alpha, batch: int) -> np.ndarray:
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), (batch,)).copy()
    if np.any(~np.isfinite(alpha)) or np.any(alpha < 0) or np.any(alpha > 1):
        raise ValueError("alpha (weight of the +theta component) must lie in [0, 1].")
    return alpha


def _weighted_sum(values, q):
    """Row sums of ``values * q`` for q of shape (1, N) (shared) or (B, N)."""
    if q.shape[0] == 1:
        return values @ q[0]
    return np.einsum("ij,ij->i", values, q)


def _sigmoid_pair(u):
    """``(sigma(u), sigma(-u))`` from one exponential, each accurate to rounding.

    Computing ``1 - sigma(u)`` instead would lose every digit of the small mass of a
    nearly empty component.
    """
    small = np.exp(-np.abs(u))
    big = 1.0 / (1.0 + small)
    small *= big
    positive = u >= 0
    return np.where(positive, big, small), np.where(positive, small, big)


def solve_balanced_offset(scores, q, alpha, s_init=None, max_iter: int = 100):
    r"""The one K = 2 balanced solver: per row, the offset :math:`s` with :math:`\sum_i q_i \sigma(s + b_i) = \alpha`.

    Every balanced entropic projection onto two columns reduces to this scalar equation:
    with row marginal :math:`q`, column marginal :math:`(\alpha, 1 - \alpha)` and
    :math:`b_i = C_{i1} - C_{i0}` the log-odds of the two columns' kernels, the plan is
    :math:`P_{i0} = q_i \sigma(s + b_i)`, :math:`P_{i1} = q_i - P_{i0}`, and :math:`s`
    is the difference of the two column potentials. The symmetric model has
    :math:`b_i = 2\theta x_i` (:func:`balanced_log_odds`); two free means give
    :math:`b_i` affine in :math:`x_i`
    (:func:`sinkhorn_em_repro.experiments.landscape.two_component_losses`).

    :math:`m(s) = \sum_i q_i \sigma(s + b_i)` increases strictly from 0 to 1, so the
    root is unique and lies in the bracket
    :math:`\operatorname{logit}\alpha - [\max_i b_i, \min_i b_i]` (over the points with
    :math:`q_i > 0`). Newton's method is applied to
    :math:`G(s) = \log m(s) - \log(1 - m(s)) - \operatorname{logit}\alpha`, which is
    nearly linear in :math:`s` (exactly linear when all :math:`b_i` are equal); a step
    leaving the current bracket is replaced by bisection, so the iteration always
    converges, to rounding. :math:`1 - m(s)` is summed from :math:`\sigma(-s - b_i)`
    directly, never by cancellation.

    Parameters
    ----------
    scores : ndarray of shape (B, N)
        :math:`b_i` of each row (one row per run or per parameter value).
    q : ndarray of shape (1, N) or (B, N)
        Row marginal (non-negative rows summing to 1; a single row is shared).
    alpha : ndarray of shape (B,)
        Target mass of column 0, in [0, 1].
    s_init : array_like of shape (B,), optional
        Starting offsets (clipped into the bracket); default :math:`\operatorname{logit}\alpha`.
    max_iter : int
        Maximum number of safeguarded Newton steps.

    Returns
    -------
    s : ndarray of shape (B,)
        :math:`+\infty` where ``alpha == 1`` and :math:`-\infty` where ``alpha == 0``.
    """
    batch = scores.shape[0]
    target = logit(alpha)
    s = np.where(np.isfinite(target), 0.0, target)
    solve = np.isfinite(target)
    if not np.any(solve):
        return s
    idx = np.flatnonzero(solve)
    qs = q if q.shape[0] == 1 else q[idx]
    b = scores[idx]
    # Points with zero weight do not constrain the root: keep them out of the bracket.
    support = np.broadcast_to(qs > 0, b.shape)
    hi = target[idx] - np.min(np.where(support, b, np.inf), axis=1)
    lo = target[idx] - np.max(np.where(support, b, -np.inf), axis=1)
    if s_init is None:
        current = target[idx].copy()
    else:
        current = np.broadcast_to(np.asarray(s_init, dtype=float), (batch,))[idx].copy()
        current = np.where(np.isfinite(current), current, target[idx])
    current = np.clip(current, lo, hi)
    active = np.ones(idx.shape[0], dtype=bool)
    for _ in range(max_iter):
        u = current[active, None] + b[active]
        q_active = qs if qs.shape[0] == 1 else qs[active]
        p0, p1 = _sigmoid_pair(u)
        mass0 = _weighted_sum(p0, q_active)
        mass1 = _weighted_sum(p1, q_active)
        p0 *= p1
        with np.errstate(divide="ignore"):
            g = np.log(mass0) - np.log(mass1) - target[idx][active]
            slope = _weighted_sum(p0, q_active) * (1.0 / mass0 + 1.0 / mass1)
        s_act = current[active]
        # Keep the bracket: G increases with s.
        lo_act = np.where(g < 0, s_act, lo[active])
        hi_act = np.where(g > 0, s_act, hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = s_act - g / slope
        # Inclusive: near the root the Newton step can round to zero, leaving the iterate
        # on the bracket end it just set; that is convergence, not a reason to bisect.
        inside = np.isfinite(newton) & (newton >= lo_act) & (newton <= hi_act)
        proposal = np.where(inside, newton, 0.5 * (lo_act + hi_act))
        proposal = np.where(g == 0, s_act, proposal)
        step = np.abs(proposal - s_act)
        lo[active], hi[active], current[active] = lo_act, hi_act, proposal
        # Newton converges quadratically: once a step is this small the iterate is
        # exact to rounding. The bracket test catches the pure-bisection case.
        done = (step <= 1e-12 * np.maximum(1.0, np.abs(proposal))) | (
            hi_act - lo_act <= 4 * np.finfo(float).eps * np.maximum(1.0, np.abs(proposal))
        )
        still = np.flatnonzero(active)[~done]
        active[:] = False
        active[still] = True
        if not np.any(active):
            break
    s[idx] = current
    return s


def balanced_log_odds(x, theta, alpha, sample_weights=None, s_init=None, max_iter: int = 100):
    r"""Solve the K = 2 balanced E-step of Sinkhorn-EM of the symmetric model to machine precision.

    The balanced entropic projection with row marginal :math:`q` and column marginal
    :math:`(\alpha, 1 - \alpha)` has plan :math:`P_{i0} = q_i \sigma(s + 2 x_i\theta)`,
    :math:`P_{i1} = q_i - P_{i0}` for the unique :math:`s = g_0 - g_1` such that

    .. math:: m(s) := \sum_i q_i\, \sigma(s + 2 x_i \theta) = \alpha .

    :math:`m` increases strictly from 0 to 1, so the root is unique; it lies in the
    bracket :math:`\operatorname{logit}\alpha - 2\theta\,[\max_i x_i, \min_i x_i]`
    (ordered), because :math:`m(s)` is bounded by the sigmoid of its extreme arguments.
    This is :func:`solve_balanced_offset` with :math:`b_i = 2 x_i \theta`.

    Parameters
    ----------
    x : array_like of shape (N,) or (B, N)
        Data, one row per run (a single row is shared by every run).
    theta : array_like of shape (B,)
        Current mean parameter of each run.
    alpha : float or array_like of shape (B,)
        Target mass of the :math:`+\theta` component, in [0, 1].
    sample_weights : array_like of shape (N,) or (B, N), optional
        Row marginal :math:`q` (each row sums to 1); default uniform :math:`1/N`.
    s_init : array_like of shape (B,), optional
        Warm start (for example the root of the previous outer iteration).
    max_iter : int
        Maximum number of safeguarded Newton steps.

    Returns
    -------
    s : ndarray of shape (B,)
        The log-odds offset; :math:`+\infty` where ``alpha == 1`` and
        :math:`-\infty` where ``alpha == 0``.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    x, q = _as_batch(x, sample_weights)
    batch = theta.shape[0]
    alpha = _check_alpha(alpha, batch)
    return solve_balanced_offset(2.0 * theta[:, None] * x, q, alpha, s_init, max_iter)


def _log_cost(x, theta):
    """Costs C_i0, C_i1 = -log N(x_i; +-theta, 1), each of shape (B, N)."""
    return (
        0.5 * (x - theta[:, None]) ** 2 + _LOG_SQRT_2PI,
        0.5 * (x + theta[:, None]) ** 2 + _LOG_SQRT_2PI,
    )


def sinkhorn_sweeps_plan(x, theta, alpha, sample_weights=None, n_sweeps: int = 200):
    r"""The authors' E-step: a fixed number of log-domain Sinkhorn sweeps, cold start.

    Balanced entropic OT (:math:`\varepsilon = 1`) between the row marginal :math:`q`
    and the column marginal :math:`b = (\alpha, 1 - \alpha)` with cost
    :math:`C_{ik} = -\log N(x_i; \pm\theta, 1)`. Starting from :math:`g = 0`, each sweep
    performs

    .. math:: f_i \leftarrow \log q_i - \operatorname{LSE}_k (g_k - C_{ik}), \qquad
              g_k \leftarrow \log b_k - \operatorname{LSE}_i (f_i - C_{ik}),

    and the plan is :math:`P_{ik} = \exp(f_i + g_k - C_{ik})`. The column marginal is
    exact after the last half-step (so :math:`P` has total mass 1); the row marginal
    is exact only when the sweeps have converged.

    Parameters
    ----------
    x : array_like of shape (N,) or (B, N)
    theta : array_like of shape (B,)
    alpha : float or array_like of shape (B,)
    sample_weights : array_like of shape (N,) or (B, N), optional
    n_sweeps : int
        Number of (f, g) sweeps, 200 in the authors' code.

    Returns
    -------
    plan0, plan1 : ndarray of shape (B, N)
        The two columns of the plan.
    row_error : ndarray of shape (B,)
        :math:`\sum_i |P_{i0} + P_{i1} - q_i|`.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    x, q = _as_batch(x, sample_weights)
    alpha = _check_alpha(alpha, theta.shape[0])
    if n_sweeps < 1:
        raise ValueError(f"n_sweeps must be >= 1, got {n_sweeps}.")
    return _sinkhorn_sweeps_plan(x, q, theta, alpha, n_sweeps)


def _column_lse(values):
    """log sum_i exp(values_i) along axis 1, safe when a row is all -inf."""
    top = np.max(values, axis=1)
    finite_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(values - finite_top[:, None]), axis=1)) + finite_top


def _sinkhorn_sweeps_plan(x, q, theta, alpha, n_sweeps):
    cost0, cost1 = _log_cost(x, theta)
    with np.errstate(divide="ignore"):
        # log 0 = -inf is the exact potential of an empty column (alpha in {0, 1}).
        log_q = np.log(q)
        log_b0, log_b1 = np.log(alpha), np.log1p(-alpha)
    g0 = np.zeros(theta.shape[0])
    g1 = np.zeros(theta.shape[0])
    for _ in range(n_sweeps):
        f = log_q - np.logaddexp(g0[:, None] - cost0, g1[:, None] - cost1)
        g0 = log_b0 - _column_lse(f - cost0)
        g1 = log_b1 - _column_lse(f - cost1)
    plan0 = np.exp(f + g0[:, None] - cost0)
    plan1 = np.exp(f + g1[:, None] - cost1)
    row_error = np.sum(np.abs(plan0 + plan1 - q), axis=1)
    return plan0, plan1, row_error


def symmetric_eot_loss(x, theta, alpha, sample_weights=None):
    r"""Entropic OT loss :math:`L(\theta)` of the symmetric model (:math:`\varepsilon = 1`).

    :math:`L(\theta) = \min_P \langle P, C\rangle + \mathrm{KL}(P \,\|\, q \otimes b)` over
    couplings with row marginal :math:`q` and column marginal
    :math:`b = (\alpha, 1-\alpha)`, evaluated at the exact plan of
    :func:`balanced_log_odds` (with the convention :math:`0 \log 0 = 0`).

    Returns
    -------
    ndarray of shape (B,)
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    x, q = _as_batch(x, sample_weights)
    alpha = _check_alpha(alpha, theta.shape[0])
    s = solve_balanced_offset(2.0 * theta[:, None] * x, q, alpha, None, 100)
    u = s[:, None] + 2.0 * theta[:, None] * x
    cost0, cost1 = _log_cost(x, theta)
    total = np.zeros(theta.shape[0])
    for cost, mass_b, sign in ((cost0, alpha, 1.0), (cost1, 1.0 - alpha, -1.0)):
        plan = q * expit(sign * u)
        with np.errstate(divide="ignore", invalid="ignore"):
            # log(P / (q b)) = log sigma(+-u) - log b, written without forming P / (q b).
            log_ratio = -np.logaddexp(0.0, -sign * u) - np.log(mass_b)[:, None]
            terms = np.where(plan > 0, plan * (cost + log_ratio), 0.0)
        total += np.sum(terms, axis=1)
    return total
