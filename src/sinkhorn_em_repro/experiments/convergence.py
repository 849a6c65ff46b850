r"""Linear convergence rates of vEM, oEM and Sinkhorn-EM.

Two experiments:

**Symmetric model, population.** For :math:`\alpha^* N(\theta^*, 1) + (1-\alpha^*)
N(-\theta^*, 1)` every expectation of the E- and M-steps is taken under the true
mixture (:func:`sinkhorn_em_repro.symmetric.population_grid`: a trapezoid rule exact to
rounding), so the iterates converge to the truth itself and the error falls to machine
precision instead of stopping at the statistical error of a sample. The error is the
parameter error of :func:`sinkhorn_em_repro.symmetric.symmetric_parameter_error`. Settings:
:math:`\theta^* \in \{0.5, 1, 2\}`, :math:`\alpha^* \in \{0.6, 0.7, 0.9\}`,
:math:`\theta_0 \in \{\theta^*/2, 2\theta^*, -\theta^*\}`, and the overspecified case
:math:`\theta^* = 0` (truth :math:`N(0, 1)`, fitted with two components) with
:math:`\alpha^* = 0.5` and :math:`\alpha^* \ne 0.5`.

**General K.** ``K = 3`` components in ``d = 2`` with unequal weights, drawn by
:func:`sinkhorn_em.synthetic.make_mixture` and fitted by
:class:`sinkhorn_em.EOTGaussianMixture` (``tol=0``, ``keep_trajectory=True``) from a
shared initialisation. A sample has no exact fixed point at the truth, so the rate is
read from the distance of each iterate to the run's own last iterate (its limit), and
the distance to the truth is tabulated beside it.

**Rate of a run** (:func:`linear_rate`). The geometric phase is the set of iterates
whose error lies in the window ``[low, high]`` (default ``[1e-12, 1e-3]``): below
``high`` the transient of the initialisation is over and the error follows the
linearisation of the map at its limit; above ``low`` it is not yet rounding noise. The
rate is :math:`\exp` of the least-squares slope of :math:`\log e_t` against :math:`t`
over that phase (error ratio per iteration; smaller is faster). Fast runs may jump
over the window in one or two steps; they use the geometric mean ratio between the
last iterate above ``high`` and the first below ``low``. Runs that never get below
``high`` (sublinear convergence in the overspecified balanced case, or a spurious fixed
point) use the slope over the last ``tail_fraction`` of their iterations; their
``rate_basis`` says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sinkhorn_em_repro.fitting import FitOptions, fit_table_method
from sinkhorn_em_repro.rates import iterations_per_decade
from sinkhorn_em_repro.seeding import derive_rng
from sinkhorn_em_repro.symmetric import SYMMETRIC_METHODS, population_grid, run_symmetric, symmetric_parameter_error

__all__ = [
    "estimate_rates",
    "general_k_rates",
    "iterations_per_decade",
    "linear_rate",
    "run_general_k",
    "run_symmetric_trajectories",
    "symmetric_rates",
]

SYMMETRIC_KEYS = ["method", "theta_star", "alpha", "theta0"]
GENERAL_K_KEYS = ["method", "dataset"]


def linear_rate(errors, window=(1e-12, 1e-3), tail_fraction: float = 0.1):
    r"""Linear rate of convergence of one error sequence.

    Parameters
    ----------
    errors : array_like of shape (T + 1,)
        :math:`e_0, \dots, e_T` (non-negative).
    window : (float, float)
        ``(low, high)`` bounds of the geometric phase.
    tail_fraction : float
        Fraction of the iterations used when the error never falls below ``high``.

    Returns
    -------
    rate : float
        :math:`\exp(\text{slope of } \log e_t)`; NaN when it cannot be estimated (fewer
        than two positive errors).
    basis : {"window", "bracket", "tail", "none"}
        Which rule of the module docstring produced it.
    first, last : int
        The iterations spanned by the fit (-1 when none).
    """
    errors = np.asarray(errors, dtype=float)
    low, high = window
    if not 0 < low < high:
        raise ValueError(f"window must satisfy 0 < low < high, got {window}.")
    t = np.arange(errors.size)
    positive = errors > 0
    inside = np.flatnonzero(positive & (errors >= low) & (errors <= high))
    if inside.size >= 2:
        slope = np.polyfit(inside, np.log(errors[inside]), 1)[0]
        return float(np.exp(slope)), "window", int(inside[0]), int(inside[-1])
    below = np.flatnonzero(positive & (errors < low))
    above = np.flatnonzero(positive & (errors > high))
    if below.size and above.size and above[0] < below[0]:
        end = below[0]
        start = above[above < end][-1]
        ratio = (errors[end] / errors[start]) ** (1.0 / (end - start))
        return float(ratio), "bracket", int(start), int(end)
    candidates = t[positive]
    if candidates.size < 2:
        return float("nan"), "none", -1, -1
    n_tail = max(2, int(np.ceil(tail_fraction * (errors.size - 1))))
    tail = candidates[-n_tail:]
    slope = np.polyfit(tail, np.log(errors[tail]), 1)[0]
    return float(np.exp(slope)), "tail", int(tail[0]), int(tail[-1])


def _trim_frozen(theta, weight):
    """Number of iterates to keep: up to the first exact repetition of the state."""
    changed = np.flatnonzero((np.diff(theta) != 0) | (np.diff(weight) != 0))
    return (changed[-1] + 2) if changed.size else 1


def run_symmetric_trajectories(
    *,
    theta_stars=(0.5, 1.0, 2.0),
    alphas=(0.6, 0.7, 0.9),
    theta0_factors=(0.5, 2.0, -1.0),
    overspecified_alphas=(0.5, 0.7),
    overspecified_theta0s=(0.5, 1.0, -1.0),
    methods=SYMMETRIC_METHODS,
    max_iter: int = 1000,
    grid_step: float = 0.02,
    grid_half_width: float = 12.0,
) -> pd.DataFrame:
    r"""Population iterates of vEM, oEM and sEM on the symmetric model.

    Parameters
    ----------
    theta_stars, alphas : sequence of float
        True mean :math:`\theta^* > 0` and weight :math:`\alpha^*` of the component at
        :math:`+\theta^*` (every combination is run).
    theta0_factors : sequence of float
        Initialisations :math:`\theta_0 = c\,\theta^*`.
    overspecified_alphas, overspecified_theta0s : sequence of float
        The :math:`\theta^* = 0` runs: model weights and initial means (absolute values,
        since :math:`c\,\theta^*` would be 0).
    methods : sequence of {"vEM", "oEM", "sEM"}
    max_iter : int
        Iterations per run. Runs that reach an exact floating-point fixed point earlier
        are recorded only up to it.
    grid_step, grid_half_width : float
        The population quadrature (:func:`sinkhorn_em_repro.symmetric.population_grid`).

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``method, theta_star, alpha, theta0, iteration, theta,
        weight, error``.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
    if any(ts <= 0 for ts in theta_stars):
        raise ValueError("theta_stars must be > 0; the theta* = 0 case has its own keys.")
    settings = [(float(ts), float(a), [c * ts for c in theta0_factors]) for ts in theta_stars for a in alphas]
    settings += [(0.0, float(a), list(overspecified_theta0s)) for a in overspecified_alphas]
    frames = []
    for theta_star, alpha, theta0s in settings:
        x, weights = population_grid(theta_star, alpha, grid_step, grid_half_width)
        theta0s = np.asarray(theta0s, dtype=float)
        for method in methods:
            run = run_symmetric(x, theta0s, alpha, method, max_iter, sample_weights=weights)
            errors = symmetric_parameter_error(run.theta, run.weight, theta_star, alpha)
            for b, theta0 in enumerate(theta0s):
                keep = _trim_frozen(run.theta[:, b], run.weight[:, b])
                frames.append(
                    pd.DataFrame(
                        {
                            "method": method,
                            "theta_star": theta_star,
                            "alpha": alpha,
                            "theta0": theta0,
                            "iteration": np.arange(keep),
                            "theta": run.theta[:keep, b],
                            "weight": run.weight[:keep, b],
                            "error": errors[:keep, b],
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True)


def estimate_rates(
    trajectories: pd.DataFrame,
    keys,
    error_column: str,
    *,
    window=(1e-12, 1e-3),
    tail_fraction: float = 0.1,
    target_error: float = 1e-6,
    target_column: str | None = None,
) -> pd.DataFrame:
    """Rate of every run of a long trajectory table (one run per value of ``keys``).

    Returns one row per run with ``keys``, ``rate``, ``rate_basis``,
    ``rate_first_iteration``, ``rate_last_iteration``, ``iterations_to_1e-6`` (the first
    iteration whose ``target_column`` error, default ``error_column``, is below
    ``target_error``; NaN if never), ``final_error``, ``n_iterations``, and
    ``rate_ratio_sem_vem`` (the sEM rate over the vEM rate of the same setting, on
    every row of that setting).
    """
    target_column = target_column or error_column
    rows = []
    for key, run in trajectories.sort_values([*keys, "iteration"]).groupby(keys, sort=False):
        rate, basis, first, last = linear_rate(run[error_column].to_numpy(), window, tail_fraction)
        reached = np.flatnonzero(run[target_column].to_numpy() < target_error)
        rows.append(
            {
                **dict(zip(keys, key)),
                "rate": rate,
                "rate_basis": basis,
                "rate_first_iteration": first,
                "rate_last_iteration": last,
                "iterations_to_1e-6": float(run["iteration"].iloc[reached[0]]) if reached.size else np.nan,
                "final_error": float(run[target_column].iloc[-1]),
                "n_iterations": int(run["iteration"].iloc[-1]),
            }
        )
    rates = pd.DataFrame(rows)
    setting = [k for k in keys if k != "method"]
    # A rate ratio compares two convergences to the same target; a run that stalls at a
    # spurious fixed point or converges sublinearly has no linear rate to compare.
    comparable = rates["rate"].where(rates["iterations_to_1e-6"].notna())
    by_method = rates.assign(rate=comparable).pivot_table(
        index=setting, columns="method", values="rate", aggfunc="first", dropna=False
    )
    if {"sEM", "vEM"} <= set(by_method.columns):
        ratio = (by_method["sEM"] / by_method["vEM"]).rename("rate_ratio_sem_vem").reset_index()
        rates = rates.merge(ratio, on=setting, how="left")
    else:
        rates["rate_ratio_sem_vem"] = np.nan
    return rates


def symmetric_rates(
    trajectories: pd.DataFrame, *, window=(1e-12, 1e-3), tail_fraction: float = 0.1, target_error: float = 1e-6
) -> pd.DataFrame:
    """The rates table of the symmetric experiment (``results/tables/convergence_rates.csv``).

    Columns ``method, theta_star, alpha, theta0, rate, iterations_to_1e-6`` first, then
    the diagnostics of :func:`estimate_rates`.
    """
    rates = estimate_rates(
        trajectories, SYMMETRIC_KEYS, "error", window=window, tail_fraction=tail_fraction, target_error=target_error
    )
    first = [*SYMMETRIC_KEYS, "rate", "iterations_to_1e-6"]
    return rates[first + [c for c in rates.columns if c not in first]]


def run_general_k(
    *,
    seed: int,
    n_samples: int = 2000,
    weights=(0.5, 0.3, 0.2),
    dim: int = 2,
    separation: float = 3.0,
    n_datasets: int = 3,
    init_noise: float = 0.5,
    methods=SYMMETRIC_METHODS,
    options: FitOptions,
) -> pd.DataFrame:
    r"""Error against iteration for vEM, oEM and sEM on general K-component mixtures.

    For each dataset ``j`` (seed ``derive_seed(seed, "convergence", "general_k", j)``) the
    data come from :func:`sinkhorn_em.synthetic.make_mixture` (identity covariances,
    minimum distance ``separation`` between means). Every method starts from the same
    point: means = true means + ``init_noise`` times standard normal noise, identity
    covariances, weights = the true weights (known to vEM and sEM; the starting value
    of oEM). ``options`` are the section's fit options (:meth:`FitOptions.from_config` with
    ``tol=0``): each fit runs exactly ``options.max_iter`` iterations.

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``method, dataset, n_components, dim, iteration,
        error_to_truth``
        (:func:`sinkhorn_em.matched_parameter_error` of means and covariances against
        the truth), ``error_to_limit`` (the same against the run's last iterate),
        ``nll`` and ``objective`` (from ``history_``).
    """
    from sinkhorn_em import matched_parameter_error
    from sinkhorn_em.synthetic import make_mixture

    weights = np.asarray(weights, dtype=float)
    FitOptions.check(options, fixed_budget_for="the general-K trajectories")
    if n_datasets < 1:
        raise ValueError(f"the general-K trajectories need n_datasets >= 1, got {n_datasets}.")
    frames = []
    for dataset in range(n_datasets):
        rng = derive_rng(seed, "convergence", "general_k", dataset)
        sample = make_mixture(n_samples, weights, dim, separation, rng)
        means_init = sample.means + init_noise * rng.standard_normal(sample.means.shape)
        covariances_init = np.broadcast_to(np.eye(dim), (weights.size, dim, dim)).copy()
        for method in methods:
            model = fit_table_method(
                method,
                sample.X,
                weights=weights,
                means_init=means_init,
                covariances_init=covariances_init,
                options=options,
                keep_trajectory=True,
            ).model
            limit = model.trajectory_[-1]
            history = model.history_
            frames.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "dataset": dataset,
                        "n_components": weights.size,
                        "dim": dim,
                        "iteration": history["iteration"].to_numpy(),
                        "error_to_truth": [
                            matched_parameter_error(sample.means, it["means"], sample.covariances, it["covariances"])[0]
                            for it in model.trajectory_
                        ],
                        "error_to_limit": [
                            matched_parameter_error(
                                limit["means"], it["means"], limit["covariances"], it["covariances"]
                            )[0]
                            for it in model.trajectory_
                        ],
                        "nll": history["nll"].to_numpy(),
                        "objective": history["objective"].to_numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def general_k_rates(
    trajectories: pd.DataFrame, *, window=(1e-12, 1e-3), tail_fraction: float = 0.1, target_error: float = 1e-6
) -> pd.DataFrame:
    """Rates of the general-K runs, read from ``error_to_limit``.

    ``iterations_to_1e-6`` also counts iterations until ``error_to_limit`` < 1e-6 (the
    distance to the truth stops at the statistical error of the sample).
    """
    return estimate_rates(
        trajectories,
        GENERAL_K_KEYS,
        "error_to_limit",
        window=window,
        tail_fraction=tail_fraction,
        target_error=target_error,
    )
