r"""Numerical checks of the identities behind the paper family (implementation check 8 of the report).

With cost :math:`C_\theta[i, k] = -\log N(x_i; \mu_k, \Sigma_k)`, known weights
:math:`\alpha` and :math:`\varepsilon = 1`, every method minimises the free energy

.. math:: F(\theta, P) = \langle P, C_\theta \rangle + \mathrm{KL}(P \,\|\, (1/n) \otimes \alpha)

over couplings :math:`P`. The seed note states two identities:

1. **NLL = semi-relaxed EOT value.** Over couplings whose rows sum to :math:`1/n`,
   :math:`\min_P F(\theta, P) = -\frac1n \sum_i \log \sum_k \alpha_k N(x_i; \mu_k,
   \Sigma_k)`, attained at :math:`P_{ik} = \frac1n \alpha_k N(x_i; \mu_k, \Sigma_k) /
   \sum_l \alpha_l N(x_i; \mu_l, \Sigma_l)` (the EM responsibilities over ``n``).
2. **EM = block-coordinate descent on F.** One EM iteration is the E half-step
   :math:`P^{t+1} = \arg\min_P F(\theta^t, P)` followed by the M half-step
   :math:`\theta^{t+1} = \arg\min_\theta F(\theta, P^{t+1})` (the weighted Gaussian
   estimates; the KL term does not depend on :math:`\theta`), so :math:`F` never
   increases at either half-step. Sinkhorn-EM is the same scheme with couplings whose
   columns also sum to :math:`\alpha`.

:func:`run_identity_checks` evaluates each side independently on one synthetic mixture
and returns the check values (absolute differences, largest increase of ``F``), which
must be at rounding level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

from sinkhorn_em.gaussian import gaussian_cost
from sinkhorn_em.losses import free_energy, nll, semi_relaxed_plan
from sinkhorn_em.sinkhorn import sinkhorn_log
from sinkhorn_em.synthetic import make_mixture
from sinkhorn_em_repro.fitting import FitOptions, fit_table_method
from sinkhorn_em_repro.seeding import derive_rng

__all__ = [
    "half_step_free_energies",
    "plan_optimality_margin",
    "run_identity_checks",
    "scipy_nll",
    "weighted_gaussian_fit",
]

#: Columns of the table returned by :func:`run_identity_checks`.
IDENTITY_COLUMNS = ["check", "identity", "description", "value", "criterion", "threshold", "passed"]


def scipy_nll(X, weights, means, covariances) -> float:
    r"""Mean NLL :math:`-\frac1n\sum_i \log\sum_k \alpha_k N(x_i; \mu_k, \Sigma_k)` from scipy.

    An implementation independent of :mod:`sinkhorn_em` (full covariances, densities from
    :func:`scipy.stats.multivariate_normal.logpdf`), used as the reference value.
    """
    log_joint = np.column_stack(
        [np.log(w) + stats.multivariate_normal(mean=m, cov=c).logpdf(X) for w, m, c in zip(weights, means, covariances)]
    )
    return float(-logsumexp(log_joint, axis=1).mean())


def weighted_gaussian_fit(X, plan):
    r"""The M half-step :math:`\arg\min_\theta \langle P, C_\theta\rangle` written out directly.

    For column masses :math:`m_k = \sum_i P_{ik}`: :math:`\mu_k = \sum_i P_{ik} x_i / m_k`
    and :math:`\Sigma_k = \sum_i P_{ik} (x_i - \mu_k)(x_i - \mu_k)^T / m_k` (full
    covariances, no regularisation). Independent of
    :func:`sinkhorn_em.gaussian.estimate_gaussian_parameters`, which it checks.
    """
    masses = plan.sum(axis=0)
    means = (plan.T @ X) / masses[:, None]
    covariances = np.stack(
        [((plan[:, k] * (X - means[k]).T) @ (X - means[k])) / masses[k] for k in range(plan.shape[1])]
    )
    return means, covariances


def _balanced_plan(cost, weights, tol):
    n = cost.shape[0]
    result = sinkhorn_log(np.full(n, 1.0 / n), weights, cost, 1.0, tol=tol, max_iter=100_000, g_init=np.log(weights))
    return result.plan


def half_step_free_energies(
    X, weights, means, covariances, n_iterations: int, *, balanced: bool = False, sinkhorn_tol: float = 1e-14
) -> np.ndarray:
    r"""Free energy after every half-step of block-coordinate descent from ``(means, covariances)``.

    Returns :math:`[F(\theta^0, P^1), F(\theta^1, P^1), F(\theta^1, P^2), \dots,
    F(\theta^T, P^T)]` (length ``2 T``), where each :math:`P^{t+1}` minimises
    :math:`F(\theta^t, \cdot)` over row-constrained couplings (EM) or, with
    ``balanced=True``, over couplings with rows :math:`1/n` and columns :math:`\alpha`
    (Sinkhorn-EM, solved to ``sinkhorn_tol``), and :math:`\theta^{t+1}` is
    :func:`weighted_gaussian_fit` of :math:`P^{t+1}`.
    """
    n = X.shape[0]
    values = []
    for _ in range(n_iterations):
        cost = gaussian_cost(X, means, covariances)
        if balanced:
            plan = _balanced_plan(cost, weights, sinkhorn_tol)
        else:
            log_resp, _ = semi_relaxed_plan(cost, weights)
            plan = np.exp(log_resp) / n
        values.append(free_energy(plan, cost, weights))
        means, covariances = weighted_gaussian_fit(X, plan)
        values.append(free_energy(plan, gaussian_cost(X, means, covariances), weights))
    return np.asarray(values)


def plan_optimality_margin(plan, cost, weights, rng, n_directions: int, step: float) -> float:
    r"""Smallest change of :math:`F(\theta, \cdot)` when ``plan`` is moved a little within the row constraint.

    Each move is :math:`Q_{ik} \propto P_{ik} e^{\pm t Z_{ik}}`, rescaled so that every row
    keeps its sum, for standard normal :math:`Z`, both signs and :math:`t` = ``step``. At
    the minimiser of the strictly convex :math:`F(\theta, \cdot)` over row-feasible
    couplings every move costs :math:`O(t^2) > 0`; at any other coupling the directional
    derivative is non-zero for almost every :math:`Z`, so one of the two signs lowers
    :math:`F` by :math:`O(t)` and the margin is negative as soon as the coupling is off by
    more than about ``step`` (relative).
    """
    base = free_energy(plan, cost, weights)
    rows = plan.sum(axis=1, keepdims=True)
    changes = []
    for _ in range(n_directions):
        direction = rng.standard_normal(plan.shape)
        for sign in (1.0, -1.0):
            moved = plan * np.exp(sign * step * direction)
            moved *= rows / moved.sum(axis=1, keepdims=True)
            changes.append(free_energy(moved, cost, weights) - base)
    return float(min(changes))


def _m_step_margin(X, plan, weights, means, covariances, rng, n_perturbations: int, size: float) -> float:
    """Smallest increase of F(., P) over random perturbations of the M-step solution, in both directions."""
    base = free_energy(plan, gaussian_cost(X, means, covariances), weights)
    increases = []
    for _ in range(n_perturbations):
        noise = rng.standard_normal(covariances.shape)
        # Symmetric perturbation keeps the covariances symmetric (and positive for small size).
        cov_step = size * (noise + np.swapaxes(noise, 1, 2)) / 2.0
        mean_step = size * rng.standard_normal(means.shape)
        for sign in (1.0, -1.0):
            cost = gaussian_cost(X, means + sign * mean_step, covariances + sign * cov_step)
            increases.append(free_energy(plan, cost, weights) - base)
    return float(min(increases))


def run_identity_checks(
    *,
    seed: int,
    n_samples: int = 300,
    weights=(0.5, 0.3, 0.2),
    dim: int = 2,
    separation: float = 2.0,
    n_iterations: int = 10,
    tolerance: float = 1e-10,
    n_perturbations: int = 50,
    perturbation_size: float = 1e-3,
) -> pd.DataFrame:
    r"""Check values of the identities of the module docstring on one synthetic mixture.

    The data are :func:`sinkhorn_em.synthetic.make_mixture` (``n_samples`` points, known
    ``weights``, dimension ``dim``, ``separation``) drawn from
    ``derive_rng(seed, "report", "identities")``; the parameters at which the identities
    are evaluated are deliberately wrong (true means plus unit noise, identity covariances)
    so that the E-step plan is far from a hard assignment.

    Parameters
    ----------
    seed : int
        Base seed of the configuration.
    n_samples, weights, dim, separation
        The synthetic mixture.
    n_iterations : int
        Iterations of block-coordinate descent whose half-steps are checked.
    tolerance : float
        Largest acceptable check value (absolute difference, or increase of ``F``).
    n_perturbations, perturbation_size : int, float
        Random directions (each used with both signs) and step of the moves of the E-step
        coupling and of the M-step solution that check they minimise :math:`F`.

    Returns
    -------
    pandas.DataFrame
        One row per check with columns ``check`` (identifier), ``identity``
        (``nll_semi_relaxed`` | ``em_block_coordinate``), ``description``, ``value``,
        ``criterion`` (``value <= threshold`` or ``value > threshold``), ``threshold`` and
        ``passed``:

        * ``nll_vs_scipy``: ``|sinkhorn_em.nll - scipy_nll|``;
        * ``nll_vs_free_energy``: ``|sinkhorn_em.nll - F(theta, P*)|`` with ``P*`` the
          semi-relaxed plan;
        * ``semi_relaxed_plan_rows``: ``max_i |sum_k P*_ik - 1/n|`` (``P*`` is feasible);
        * ``semi_relaxed_plan_optimal``: :func:`plan_optimality_margin` of ``P*`` (every
          small row-preserving move of ``P*``, in both directions, raises ``F``; negative
          for a coupling that is not the minimiser);
        * ``em_step_vs_bcd``: largest absolute difference between the parameters after one
          ``EOTGaussianMixture(method="em", tol=0, max_iter=1, reg_covar=0)`` iteration and
          ``weighted_gaussian_fit(P*)``;
        * ``m_step_optimal``: smallest increase of ``F(., P*)`` over small perturbations of
          the M-step solution in both directions (must be > 0; negative when the M-step is
          off);
        * ``em_half_step_increase`` / ``sem_half_step_increase``: largest increase of
          ``F`` between consecutive half-steps of EM / Sinkhorn-EM (:func:`half_step_free_energies`;
          negative = strict decrease everywhere).
    """
    if n_iterations < 1 or n_samples < 2 or n_perturbations < 1:
        raise ValueError(
            "n_iterations, n_perturbations must be >= 1 and n_samples >= 2; raise them in the report config."
        )
    if tolerance <= 0 or perturbation_size <= 0:
        raise ValueError("tolerance and perturbation_size must be > 0; fix them in the report config.")
    weights = np.asarray(weights, dtype=float)
    rng = derive_rng(seed, "report", "identities")
    sample = make_mixture(n_samples, weights, dim, separation, rng)
    X, K = sample.X, weights.size
    means0 = sample.means + rng.standard_normal(sample.means.shape)
    covariances0 = np.broadcast_to(np.eye(dim), (K, dim, dim)).copy()

    cost = gaussian_cost(X, means0, covariances0)
    log_resp, _ = semi_relaxed_plan(cost, weights)
    plan = np.exp(log_resp) / n_samples
    nll_value = nll(X, weights, means0, covariances0)
    best = free_energy(plan, cost, weights)
    optimality_gap = plan_optimality_margin(plan, cost, weights, rng, n_perturbations, perturbation_size)

    model = fit_table_method(
        "vEM",
        X,
        weights=weights,
        means_init=means0,
        covariances_init=covariances0,
        # One unregularised EM step: the identity compares it with the exact M-step.
        options=FitOptions(tol=0.0, max_iter=1, reg_covar=0.0),
    ).model
    means1, covariances1 = weighted_gaussian_fit(X, plan)
    step_difference = max(np.abs(model.means_ - means1).max(), np.abs(model.covariances_ - covariances1).max())
    margin = _m_step_margin(X, plan, weights, means1, covariances1, rng, n_perturbations, perturbation_size)

    em_values = half_step_free_energies(X, weights, means0, covariances0, n_iterations)
    sem_values = half_step_free_energies(X, weights, means0, covariances0, n_iterations, balanced=True)

    at_most = f"value <= {tolerance:g}"
    checks = [
        (
            "nll_vs_scipy",
            "nll_semi_relaxed",
            "|sinkhorn_em.nll - NLL from scipy.stats.multivariate_normal|",
            abs(nll_value - scipy_nll(X, weights, means0, covariances0)),
            at_most,
            tolerance,
        ),
        (
            "nll_vs_free_energy",
            "nll_semi_relaxed",
            "|sinkhorn_em.nll - F(theta, P*)|, P* the semi-relaxed (EM) plan",
            abs(nll_value - best),
            at_most,
            tolerance,
        ),
        (
            "semi_relaxed_plan_rows",
            "nll_semi_relaxed",
            "max_i |sum_k P*_ik - 1/n| (P* is row-feasible)",
            float(np.abs(plan.sum(axis=1) - 1.0 / n_samples).max()),
            at_most,
            tolerance,
        ),
        (
            "semi_relaxed_plan_optimal",
            "nll_semi_relaxed",
            "min over small row-preserving moves Q = P* exp(+-t Z) of F(theta, Q) - F(theta, P*)",
            float(optimality_gap),
            "value > 0",
            0.0,
        ),
        (
            "em_step_vs_bcd",
            "em_block_coordinate",
            "max |EM iterate - argmin_theta F(theta, P*)| over means and covariances",
            float(step_difference),
            at_most,
            tolerance,
        ),
        (
            "m_step_optimal",
            "em_block_coordinate",
            "min over small perturbations +-d of F(theta1 +- d, P*) - F(theta1, P*)",
            margin,
            "value > 0",
            0.0,
        ),
        (
            "em_half_step_increase",
            "em_block_coordinate",
            f"max increase of F between consecutive EM half-steps ({n_iterations} iterations)",
            float(np.diff(em_values).max()),
            at_most,
            tolerance,
        ),
        (
            "sem_half_step_increase",
            "em_block_coordinate",
            f"max increase of F between consecutive Sinkhorn-EM half-steps ({n_iterations} iterations)",
            float(np.diff(sem_values).max()),
            at_most,
            tolerance,
        ),
    ]
    table = pd.DataFrame(checks, columns=IDENTITY_COLUMNS[:-1])
    table["passed"] = np.where(
        table["criterion"] == "value > 0", table["value"] > 0, table["value"] <= table["threshold"]
    )
    return table
