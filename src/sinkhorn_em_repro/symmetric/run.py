"""Batched vEM, oEM and sEM iterations of the symmetric model, and its population quadrature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from sinkhorn_em_repro.symmetric.balanced import (
    _as_batch,
    _check_alpha,
    _sinkhorn_sweeps_plan,
    _weighted_sum,
    solve_balanced_offset,
)

__all__ = [
    "ESTEP_VARIANTS",
    "OEM_WEIGHT_UPDATES",
    "SYMMETRIC_METHODS",
    "SymmetricRun",
    "population_grid",
    "run_symmetric",
]

SYMMETRIC_METHODS = ("vEM", "oEM", "sEM")
#: oEM weight updates: from the E-step that also gives the new mean (EM on the
#: overparametrised model, as the library's oEM), or from a second E-step at the new mean
#: and the old weight (the order of the authors' Figure 2 code).
OEM_WEIGHT_UPDATES = ("same_estep", "new_mean")
#: sEM E-step variants: the exact scalar root, or the authors' fixed number of
#: log-domain Sinkhorn sweeps from cold potentials.
ESTEP_VARIANTS = ("exact", "sinkhorn")


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
    oem_weight_update: str = "same_estep",
) -> SymmetricRun:
    r"""Run vEM, oEM or sEM on a batch of runs of the symmetric model.

    Run ``b`` uses data row ``x[b]`` (or the single shared row), initial mean
    ``theta0[b]`` and weight ``alpha[b]``; all runs advance together. Each iteration is
    one E-step followed by one M-step (see the module docstring):

    * vEM: :math:`\theta \leftarrow \sum_i q_i x_i \tanh(x_i\theta + \tfrac12\operatorname{logit}\alpha)`;
    * oEM: the same with :math:`w_t` in place of :math:`\alpha`, then
      :math:`w_{t+1} = \sum_i q_i \sigma(\operatorname{logit} w_t + 2x_i\theta_t)`
      (``oem_weight_update="same_estep"``: both updates from one E-step) or
      :math:`w_{t+1} = \sum_i q_i \sigma(\operatorname{logit} w_t + 2x_i\theta_{t+1})`
      (``"new_mean"``: responsibilities recomputed at the new mean and the old weight, the
      order of ``em_algorithm_single`` in the authors' ``lib_neurips.py``), with
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
    oem_weight_update : {"same_estep", "new_mean"}
        oEM only: which E-step the weight update uses (see above).

    Returns
    -------
    SymmetricRun
    """
    if method not in SYMMETRIC_METHODS:
        raise ValueError(f"method must be one of {SYMMETRIC_METHODS}, got {method!r}.")
    if estep not in ESTEP_VARIANTS:
        raise ValueError(f"estep must be one of {ESTEP_VARIANTS}, got {estep!r}.")
    if oem_weight_update not in OEM_WEIGHT_UPDATES:
        raise ValueError(f"oem_weight_update must be one of {OEM_WEIGHT_UPDATES}, got {oem_weight_update!r}.")
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
            offset = solve_balanced_offset(2.0 * th[:, None] * x_act, q_act, alpha[active], log_odds[active], 100)
            log_odds[active] = offset
        if sweeps:
            plan0, plan1, row_error = _sinkhorn_sweeps_plan(x_act, q_act, th, alpha[active], n_sweeps)
            new_theta = np.sum((plan0 - plan1) * x_act, axis=1)
            marginal_error[t, active] = row_error
        else:
            half_u = 0.5 * offset[:, None] + x_act * th[:, None]
            if method == "oEM" and oem_weight_update == "same_estep":
                weight[t + 1, active] = _component_mass(half_u, q_act)
            new_theta = _weighted_sum(np.tanh(half_u, out=half_u), qx_act)
            if method == "oEM" and oem_weight_update == "new_mean":
                weight[t + 1, active] = _component_mass(0.5 * offset[:, None] + x_act * new_theta[:, None], q_act)
        theta[t + 1, active] = new_theta
        moved = (new_theta != th) | (weight[t + 1, active] != weight[t, active])
        if not np.all(moved):
            active = active[moved]
            x_act = x if x.shape[0] == 1 else x[active]
            q_act = q if q.shape[0] == 1 else q[active]
            qx_act = qx if qx.shape[0] == 1 else qx[active]
    return SymmetricRun(theta=theta, weight=weight, marginal_error=marginal_error)


def _component_mass(half_u, q):
    r""":math:`\sum_i q_i \sigma(u_i)`, the mass of the :math:`+\theta` component, as its share
    of the total :math:`\sum_i q_i (\sigma(u_i) + \sigma(-u_i))`.

    The rounded sum of the :math:`q_i` need not be 1 (its value depends on the order in which
    the BLAS adds them, which differs between CPUs), and oEM's fixed point :math:`w = 1` is
    unstable: a mass of :math:`1 - 10^{-16}` grows to a visibly different run within 200
    iterations. As a share, an empty component's mass is exactly 0 on every machine.
    """
    plus = _weighted_sum(expit(2.0 * half_u), q)
    minus = _weighted_sum(expit(-2.0 * half_u), q)
    return plus / (plus + minus)


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
