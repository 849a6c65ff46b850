r"""Batched EM, overparametrised EM and Sinkhorn-EM for the symmetric two-component model.

The model of Mena et al. (2020, section 5) on the line: two unit-variance Gaussian
components with means :math:`(\theta, -\theta)` and weights :math:`(\alpha, 1 - \alpha)`.
Component 0 is the one at :math:`+\theta`. With entropic weight :math:`\varepsilon = 1`
and cost :math:`C_{ik} = -\log N(x_i; \mu_k, 1)`, every E-step produces a coupling
:math:`P` of total mass 1 whose rows carry the sample weights :math:`q_i` (:math:`1/N` for
a sample; quadrature weights for the population), and whose two columns have the form

.. math:: P_{i0} = q_i\, \sigma(u_i), \qquad P_{i1} = q_i\, \sigma(-u_i), \qquad
          u_i = s + 2 x_i \theta ,

because :math:`C_{i1} - C_{i0} = 2 x_i \theta`. The three methods differ only in the
log-odds offset :math:`s`:

* **vEM** (weights known): :math:`s = \operatorname{logit}\alpha` (semi-relaxed E-step);
* **oEM** (weights estimated): :math:`s = \operatorname{logit} w_t`, then
  :math:`w_{t+1} = \sum_i P_{i0}`;
* **sEM** (Sinkhorn-EM): :math:`s` is the difference :math:`g_0 - g_1` of the column
  potentials of the balanced entropic OT problem, i.e. the unique root of the monotone
  scalar equation :math:`\sum_i q_i \sigma(s + 2 x_i \theta) = \alpha`
  (:func:`balanced_log_odds`).

The M-step for the constrained means maximises
:math:`\sum_i P_{i0} \log N(x_i; \theta, 1) + P_{i1} \log N(x_i; -\theta, 1)`, which gives

.. math:: \theta \leftarrow \sum_i (P_{i0} - P_{i1})\, x_i
          = \sum_i q_i\, x_i \tanh(u_i / 2).

Everything is vectorised over a batch of independent runs (rows of ``x``), so a whole
grid of initialisations and repetitions costs a handful of array operations per
iteration. ``alpha = 1`` (or 0) is handled exactly: :math:`s = \pm\infty`, the empty
component gets no mass, and no NaN or warning is produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

__all__ = [
    "ESTEP_VARIANTS",
    "SYMMETRIC_METHODS",
    "SymmetricRun",
    "balanced_log_odds",
    "population_grid",
    "run_symmetric",
    "sinkhorn_sweeps_plan",
    "symmetric_eot_loss",
    "symmetric_parameter_error",
    "symmetric_w2_squared",
    "w2_squared_two_atoms",
]

SYMMETRIC_METHODS = ("vEM", "oEM", "sEM")
#: sEM E-step variants: the exact scalar root, or the authors' fixed number of
#: log-domain Sinkhorn sweeps from cold potentials.
ESTEP_VARIANTS = ("exact", "sinkhorn")
_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


@dataclass(frozen=True)
class SymmetricRun:
    """Iterates of a batch of runs of the symmetric model.

    Attributes
    ----------
    theta : ndarray of shape (n_iter + 1, B)
        :math:`\\theta_t` for ``t = 0 .. n_iter`` (row 0 is the initialisation).
    weight : ndarray of shape (n_iter + 1, B)
        Weight of the :math:`+\\theta` component used by the model at iterate ``t``:
        constant ``alpha`` for vEM and sEM, the estimate :math:`w_t` for oEM.
    marginal_error : ndarray of shape (n_iter, B) or None
        For the Sinkhorn-sweep E-step only: L1 error of the row marginal of each
        E-step's plan after its last sweep (the column marginal is exact).
    """

    theta: np.ndarray
    weight: np.ndarray
    marginal_error: np.ndarray | None = None


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


def balanced_log_odds(x, theta, alpha, sample_weights=None, s_init=None, max_iter: int = 100):
    r"""Solve the K = 2 balanced E-step of Sinkhorn-EM to machine precision.

    The balanced entropic projection with row marginal :math:`q` and column marginal
    :math:`(\alpha, 1 - \alpha)` has plan :math:`P_{i0} = q_i \sigma(s + 2 x_i\theta)`,
    :math:`P_{i1} = q_i - P_{i0}` for the unique :math:`s = g_0 - g_1` such that

    .. math:: m(s) := \sum_i q_i\, \sigma(s + 2 x_i \theta) = \alpha .

    :math:`m` increases strictly from 0 to 1, so the root is unique; it lies in the
    bracket :math:`\operatorname{logit}\alpha - 2\theta\,[\max_i x_i, \min_i x_i]`
    (ordered), because :math:`m(s)` is bounded by the sigmoid of its extreme arguments.
    Newton's method is applied to
    :math:`G(s) = \log m(s) - \log(1 - m(s)) - \operatorname{logit}\alpha`, which is
    nearly linear in :math:`s` (exactly linear when :math:`\theta = 0`); steps leaving
    the current bracket are replaced by bisection, so convergence is guaranteed.
    :math:`1 - m(s)` is summed from :math:`\sigma(-u_i)` directly, never by
    cancellation.

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
    return _balanced_log_odds(x, q, theta, alpha, s_init, max_iter)


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


def _balanced_log_odds(x, q, theta, alpha, s_init, max_iter):
    batch = theta.shape[0]
    target = logit(alpha)
    s = np.where(np.isfinite(target), 0.0, target)
    solve = np.isfinite(target)
    if not np.any(solve):
        return s
    idx = np.flatnonzero(solve)
    xs = x if x.shape[0] == 1 else x[idx]
    qs = q if q.shape[0] == 1 else q[idx]
    two_theta_x = 2.0 * theta[idx, None] * xs
    # Points with zero weight do not constrain the root: keep them out of the bracket.
    support = np.broadcast_to(qs > 0, two_theta_x.shape)
    hi = target[idx] - np.min(np.where(support, two_theta_x, np.inf), axis=1)
    lo = target[idx] - np.max(np.where(support, two_theta_x, -np.inf), axis=1)
    if s_init is None:
        current = target[idx].copy()
    else:
        current = np.broadcast_to(np.asarray(s_init, dtype=float), (batch,))[idx].copy()
        current = np.where(np.isfinite(current), current, target[idx])
    current = np.clip(current, lo, hi)
    active = np.ones(idx.shape[0], dtype=bool)
    for _ in range(max_iter):
        u = current[active, None] + two_theta_x[active]
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


def run_symmetric(
    x,
    theta0,
    alpha,
    method: str,
    n_iter: int,
    *,
    sample_weights=None,
    estep: str = "exact",
    n_sweeps: int = 200,
) -> SymmetricRun:
    r"""Run vEM, oEM or sEM on a batch of runs of the symmetric model.

    Run ``b`` uses data row ``x[b]`` (or the single shared row), initial mean
    ``theta0[b]`` and weight ``alpha[b]``; all runs advance together. Each iteration is
    one E-step followed by one M-step (see the module docstring):

    * vEM: :math:`\theta \leftarrow \sum_i q_i x_i \tanh(x_i\theta + \tfrac12\operatorname{logit}\alpha)`;
    * oEM: the same with :math:`w_t` in place of :math:`\alpha`, then
      :math:`w_{t+1} = \sum_i q_i \sigma(\operatorname{logit} w_t + 2x_i\theta_t)`, with
      :math:`w_0 = \alpha`;
    * sEM: :math:`s` from :func:`balanced_log_odds` (warm-started from the previous
      outer iteration), or, with ``estep="sinkhorn"``, the plan of
      :func:`sinkhorn_sweeps_plan` used as it is.

    A run whose state repeats exactly (same :math:`\theta` and weight bit for bit) has
    reached a floating-point fixed point of the deterministic map; it is frozen and
    its remaining iterates are copies, which is what iterating would produce.

    Parameters
    ----------
    x : array_like of shape (N,) or (B, N)
        Data.
    theta0 : array_like of shape (B,)
        Initial means.
    alpha : float or array_like of shape (B,)
        Known weight of the :math:`+\theta` component (vEM, sEM) or initial weight (oEM).
    method : {"vEM", "oEM", "sEM"}
    n_iter : int
        Number of iterations (outer iterations for sEM).
    sample_weights : array_like of shape (N,) or (B, N), optional
        Row marginal :math:`q` (uniform :math:`1/N` by default; quadrature weights for
        the population model).
    estep : {"exact", "sinkhorn"}
        sEM only: exact scalar root, or ``n_sweeps`` log-domain Sinkhorn sweeps.
    n_sweeps : int
        Sinkhorn sweeps per E-step when ``estep="sinkhorn"``.

    Returns
    -------
    SymmetricRun
    """
    if method not in SYMMETRIC_METHODS:
        raise ValueError(f"method must be one of {SYMMETRIC_METHODS}, got {method!r}.")
    if estep not in ESTEP_VARIANTS:
        raise ValueError(f"estep must be one of {ESTEP_VARIANTS}, got {estep!r}.")
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}.")
    theta0 = np.atleast_1d(np.asarray(theta0, dtype=float))
    if theta0.ndim != 1 or not np.all(np.isfinite(theta0)):
        raise ValueError("theta0 must be a finite 1-D array (one initial mean per run).")
    x, q = _as_batch(x, sample_weights)
    batch = theta0.shape[0]
    for name, arr in (("x", x), ("sample_weights", q)):
        if arr.shape[0] not in (1, batch):
            raise ValueError(f"{name} has {arr.shape[0]} rows; expected 1 or one per run ({batch}).")
    alpha = _check_alpha(alpha, batch)
    n_iter = int(n_iter)

    theta = np.empty((n_iter + 1, batch))
    weight = np.empty((n_iter + 1, batch))
    theta[0], weight[0] = theta0, alpha
    sweeps = method == "sEM" and estep == "sinkhorn"
    marginal_error = np.zeros((n_iter, batch)) if sweeps else None
    log_odds = logit(alpha)  # warm start of the sEM root; constant for vEM

    active = np.arange(batch)
    # Sum_i q_i x_i tanh(.) is one row-wise dot product with the weighted data.
    qx = q * x
    x_act, q_act, qx_act = x, q, qx
    for t in range(n_iter):
        theta[t + 1], weight[t + 1] = theta[t], weight[t]
        if active.size == 0:
            continue
        th = theta[t, active]
        if method == "vEM":
            offset = log_odds[active]
        elif method == "oEM":
            offset = logit(weight[t, active])
        elif not sweeps:
            offset = _balanced_log_odds(x_act, q_act, th, alpha[active], log_odds[active], 100)
            log_odds[active] = offset
        if sweeps:
            plan0, plan1, row_error = _sinkhorn_sweeps_plan(x_act, q_act, th, alpha[active], n_sweeps)
            new_theta = np.sum((plan0 - plan1) * x_act, axis=1)
            marginal_error[t, active] = row_error
        else:
            half_u = 0.5 * offset[:, None] + x_act * th[:, None]
            if method == "oEM":
                # The exact mass lies in [0, 1]; the sum of N rounded terms may not.
                mass = _weighted_sum(expit(2.0 * half_u), q_act)
                weight[t + 1, active] = np.clip(mass, 0.0, 1.0)
            new_theta = _weighted_sum(np.tanh(half_u, out=half_u), qx_act)
        theta[t + 1, active] = new_theta
        moved = (new_theta != th) | (weight[t + 1, active] != weight[t, active])
        if not np.all(moved):
            active = active[moved]
            x_act = x if x.shape[0] == 1 else x[active]
            q_act = q if q.shape[0] == 1 else q[active]
            qx_act = qx if qx.shape[0] == 1 else qx[active]
    return SymmetricRun(theta=theta, weight=weight, marginal_error=marginal_error)


def w2_squared_two_atoms(weights_a, atoms_a, weights_b, atoms_b):
    r"""Closed-form squared 2-Wasserstein distance between two-atom measures on the line.

    On the line the optimal coupling is the monotone one, so
    :math:`W_2^2 = \int_0^1 (F_a^{-1}(u) - F_b^{-1}(u))^2\,du`. With the atoms of each
    measure sorted (:math:`a_- \le a_+` carrying masses :math:`p, 1-p`; :math:`b_- \le b_+`
    carrying :math:`r, 1-r`) the quantile functions are step functions and

    .. math:: W_2^2 = \min(p, r)(a_- - b_-)^2 + |p - r|\,(c - d)^2
                      + (1 - \max(p, r))(a_+ - b_+)^2 ,

    where the middle segment couples :math:`a_+` with :math:`b_-` if :math:`p < r`
    and :math:`a_-` with :math:`b_+` otherwise.

    Parameters
    ----------
    weights_a, atoms_a, weights_b, atoms_b : array_like of shape (..., 2)
        Masses (each pair sums to 1) and locations; leading dimensions broadcast.

    Returns
    -------
    ndarray of shape (...)
    """
    weights_a, atoms_a, weights_b, atoms_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (weights_a, atoms_a, weights_b, atoms_b))
    )
    if weights_a.shape[-1:] != (2,):
        raise ValueError(f"two-atom measures need a last dimension of size 2, got {weights_a.shape}.")
    if np.any(weights_a < 0) or np.any(weights_b < 0):
        raise ValueError("weights must be non-negative.")

    def sorted_measure(weights, atoms):
        swap = atoms[..., 0] > atoms[..., 1]
        low = np.where(swap, atoms[..., 1], atoms[..., 0])
        high = np.where(swap, atoms[..., 0], atoms[..., 1])
        low_mass = np.where(swap, weights[..., 1], weights[..., 0]) / weights.sum(axis=-1)
        return low, high, low_mass

    a_low, a_high, p = sorted_measure(weights_a, atoms_a)
    b_low, b_high, r = sorted_measure(weights_b, atoms_b)
    middle = np.where(p < r, (a_high - b_low) ** 2, (a_low - b_high) ** 2)
    return (
        np.minimum(p, r) * (a_low - b_low) ** 2
        + np.abs(p - r) * middle
        + (1.0 - np.maximum(p, r)) * (a_high - b_high) ** 2
    )


def symmetric_w2_squared(theta, weight, theta_star, alpha_star):
    r"""Squared W2 between :math:`w\delta_\theta + (1-w)\delta_{-\theta}` and the truth.

    The truth is :math:`\alpha^*\delta_{\theta^*} + (1-\alpha^*)\delta_{-\theta^*}`; all
    arguments broadcast. This is the error of Figure 2 of Mena et al. (2020).
    """
    theta, weight, theta_star, alpha_star = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (theta, weight, theta_star, alpha_star))
    )
    return w2_squared_two_atoms(
        np.stack([weight, 1.0 - weight], axis=-1),
        np.stack([theta, -theta], axis=-1),
        np.stack([alpha_star, 1.0 - alpha_star], axis=-1),
        np.stack([theta_star, -theta_star], axis=-1),
    )


def symmetric_parameter_error(theta, weight, theta_star, alpha_star):
    r"""Distance of :math:`(\theta, w)` from the truth, up to relabelling the components.

    For :math:`\theta^* \ne 0`,

    .. math:: e = \min\bigl\{\max(|\theta - \theta^*|, |w - \alpha^*|),\;
                             \max(|\theta + \theta^*|, |1 - w - \alpha^*|)\bigr\},

    the second term being the swapped labelling :math:`(-\theta, 1 - w)` that describes
    the same mixture. It is smooth in the parameters near the truth, so its logarithm
    decreases with the slope of the algorithm's linear rate (the squared W2 of Figure 2
    grows like :math:`|w - \alpha^*|`, not its square, and would halve the apparent
    rate of oEM). For :math:`\theta^* = 0` the weights are not identifiable (both
    atoms sit at 0) and :math:`e = |\theta|`. Arguments broadcast.
    """
    theta, weight, theta_star, alpha_star = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (theta, weight, theta_star, alpha_star))
    )
    direct = np.maximum(np.abs(theta - theta_star), np.abs(weight - alpha_star))
    swapped = np.maximum(np.abs(theta + theta_star), np.abs(1.0 - weight - alpha_star))
    return np.where(theta_star == 0, np.abs(theta), np.minimum(direct, swapped))


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
    s = _balanced_log_odds(x, q, theta, alpha, None, 100)
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


def population_grid(theta_star: float, alpha_star: float, step: float = 0.02, half_width: float = 12.0):
    r"""Points and weights that stand for the population mixture in every expectation.

    The truth :math:`\alpha^* N(\theta^*, 1) + (1-\alpha^*) N(-\theta^*, 1)` is replaced
    by the trapezoid rule on a uniform grid of spacing ``step`` over
    :math:`\pm\theta^* + [-h, h]`. The integrands of the updates,
    :math:`x \tanh(x\theta + c)\,\varphi(x \mp \theta^*)`, are analytic in a strip of
    half-width :math:`\pi / (2|\theta|)`, so the trapezoid error decays like
    :math:`\exp(-\pi^2 / (|\theta|\,\mathrm{step}))`: below 1e-100 for
    :math:`|\theta| \le 4` at the default step, and the truncation at :math:`h = 12`
    costs :math:`e^{-72}`. The population fixed point :math:`\theta^*` of vEM and sEM
    is therefore reproduced to rounding.

    Returns
    -------
    x : ndarray of shape (M,)
    weights : ndarray of shape (M,)
        Non-negative, summing to 1.
    """
    if not 0 <= alpha_star <= 1:
        raise ValueError(f"alpha_star must lie in [0, 1], got {alpha_star}.")
    if step <= 0 or half_width <= 0:
        raise ValueError("step and half_width must be positive.")
    offsets = np.arange(-half_width, half_width + 0.5 * step, step)
    density = np.exp(-0.5 * offsets**2)
    density /= density.sum()
    x = np.concatenate([theta_star + offsets, -theta_star + offsets])
    weights = np.concatenate([alpha_star * density, (1.0 - alpha_star) * density])
    return x, weights
