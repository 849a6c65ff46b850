r"""Figure 2 of Mena et al. (2020): vEM, oEM and Sinkhorn-EM on the symmetric 1-D mixture.

The authors' protocol (``synthetic_experiment/lib_neurips.py`` and ``Fig2_NeuRIPS.ipynb`` of
github.com/gomena/SinkhornEM_Public at commit 16ec04e):

* truth :math:`\alpha^* N(1, 1) + (1 - \alpha^*) N(-1, 1)`, variance known, ``N = 1000``;
* one noise vector :math:`z \sim N(0, I_N)` per repetition, shared by every
  :math:`\alpha^*` and method: :math:`x_i = z_i + 1` for the first
  ``int(N * alpha)`` points (Python truncation of the floating-point product, as the
  notebook) and :math:`z_i - 1` for the others;
* means :math:`(\theta, -\theta)`, :math:`\theta_0 \in` ``linspace(-2, 2, 26)``,
  :math:`\alpha^* \in` ``linspace(0.5, 1, 51)``, 10 repetitions; every weight starts at
  :math:`\alpha^*`;
* vEM and oEM run 200 iterations, sEM 25 outer iterations (exact E-step, or the
  authors' 200 log-domain Sinkhorn sweeps with ``estep="sinkhorn"``); oEM updates its
  weight after the mean, from responsibilities at the new mean and the old weight:
  :math:`w_{t+1} = \frac1N \sum_i \sigma(\operatorname{logit} w_t + 2 x_i \theta_{t+1})`;
* error of iteration :math:`t \ge 1` = squared W2 between
  :math:`w\,\delta_{\theta_t} + (1 - w)\,\delta_{-\theta_t}` and the truth, with
  :math:`w = \alpha^*` for vEM and sEM and, for oEM, the weight :math:`w_{t-1}` that the
  E-step producing :math:`\theta_t` used (the notebook pairs ``seq[n]`` with
  ``thetaseq[n]``);
* iterations to converge = the first :math:`t \ge 1` with :math:`e_t < 1.5\, e_T`
  (:math:`T` the run's last iteration; the start is not counted; NaN when no iteration
  qualifies, which happens only when :math:`e_T` is 0).

Where the project differs (numerically immaterial, stated in the README): the noise comes
from seeded per-repetition streams and is float64 (the notebook: the unseeded global stream,
float32); the exact E-step solves the K = 2 balanced problem to machine precision (it agrees
with the authors' 200 sweeps to 1e-15 on the reference sample of ``tests/data``); at
:math:`\alpha^* = 1` sEM takes its exact limit, where the authors' code returns NaN.

All runs for one :math:`\alpha^*` (every :math:`\theta_0` and repetition) advance
together through :func:`sinkhorn_em_repro.symmetric.run_symmetric`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sinkhorn_em_repro.seeding import derive_rng
from sinkhorn_em_repro.symmetric import ESTEP_VARIANTS, SYMMETRIC_METHODS, run_symmetric, symmetric_w2_squared

__all__ = [
    "FIG2_OEM_WEIGHT_UPDATE",
    "combine_chunks",
    "fig2_noise",
    "fig2_sample",
    "grid",
    "iterate_errors",
    "iterations_to_converge",
    "right_sign",
    "run_alpha",
    "run_estep_check",
    "run_fig2",
]

#: The true mean of the heavier component in the authors' protocol.
THETA_STAR = 1.0
#: oEM's weight update in Figure 2: after the mean, from the new mean (the authors' order).
FIG2_OEM_WEIGHT_UPDATE = "new_mean"


def grid(spec) -> np.ndarray:
    """``numpy.linspace`` from a config mapping ``{start, stop, num}`` (or a plain list)."""
    if isinstance(spec, dict):
        return np.linspace(float(spec["start"]), float(spec["stop"]), int(spec["num"]))
    return np.asarray(spec, dtype=float)


def fig2_noise(seed: int, n_samples: int, rep: int) -> np.ndarray:
    """The noise vector of repetition ``rep``; the same for every alpha, method and job."""
    return derive_rng(seed, "fig2", "noise", int(rep)).standard_normal(int(n_samples))


def fig2_sample(noise: np.ndarray, alpha: float) -> np.ndarray:
    r"""Shift the first ``int(N * alpha)`` noise values by +1, the rest by -1.

    ``int`` truncates the floating-point product, as the authors' notebook does: grid
    values such as 0.68 that binary floating point stores slightly below their value give
    ``int(1000 * 0.68) == 679`` points at +1.
    """
    n = noise.shape[-1]
    return noise + np.where(np.arange(n) < int(n * alpha), THETA_STAR, -THETA_STAR)


def iterations_to_converge(errors: np.ndarray, factor: float = 1.5) -> np.ndarray:
    r"""First iteration whose error is below ``factor`` times the final error.

    Parameters
    ----------
    errors : ndarray of shape (n_iter, B)
        Error after iterations :math:`1, \dots, T` (row ``t - 1`` holds :math:`e_t`; the
        start is not included).
    factor : float
        Threshold relative to the last row.

    Returns
    -------
    ndarray of shape (B,), float
        The smallest :math:`t \ge 1` with :math:`e_t < \text{factor}\cdot e_T`; NaN
        where no iteration qualifies (:math:`e_T = 0` or NaN).
    """
    reached = errors < factor * errors[-1]
    first = np.argmax(reached, axis=0) + 1.0
    return np.where(reached.any(axis=0), first, np.nan)


def iterate_errors(run, method: str, alpha: float) -> np.ndarray:
    r"""Squared W2 error after each iteration :math:`t = 1 .. T` of a run, paired as the authors.

    vEM and sEM: :math:`(\theta_t, \alpha^*)`. oEM: :math:`(\theta_t, w_{t-1})`, the new
    mean with the weight its E-step used.

    Returns
    -------
    ndarray of shape (T, B)
    """
    weights = run.weight[:-1] if method == "oEM" else run.weight[1:]
    return symmetric_w2_squared(run.theta[1:], weights, THETA_STAR, alpha)


def right_sign(theta, weight, alpha) -> np.ndarray:
    r"""Whether the fitted mixture puts its heavier atom on the same side as the truth's.

    :math:`\theta (2w - 1)(2\alpha^* - 1) > 0`, the fit being
    :math:`w\,\delta_\theta + (1 - w)\,\delta_{-\theta}` and the truth
    :math:`\alpha^*\delta_1 + (1 - \alpha^*)\delta_{-1}`. For vEM and sEM
    (:math:`w = \alpha^* > 1/2`) that is :math:`\theta > 0`; for oEM the label swap
    :math:`(-\theta, 1 - w)` is the same mixture and is right too. At :math:`\alpha^* = 1/2`
    the truth is symmetric and every run is right.
    """
    theta, weight, alpha = (np.asarray(v, dtype=float) for v in (theta, weight, alpha))
    return (theta * (2.0 * weight - 1.0) * (2.0 * alpha - 1.0) > 0) | (alpha == 0.5)


def run_alpha(
    noise_by_rep,
    alpha: float,
    theta0s,
    method: str,
    n_iter: int,
    *,
    estep: str = "exact",
    n_sweeps: int = 200,
    error_iteration: int = 4,
    converge_factor: float = 1.5,
) -> pd.DataFrame:
    r"""The rows of :func:`run_fig2` for one method and one :math:`\alpha^*`, from given noise vectors.

    ``noise_by_rep`` has one row per repetition; run ``(theta0, rep)`` uses
    :func:`fig2_sample` of row ``rep`` and weight update :data:`FIG2_OEM_WEIGHT_UPDATE`.
    """
    noise_by_rep = np.atleast_2d(np.asarray(noise_by_rep, dtype=float))
    theta0s = np.asarray(theta0s, dtype=float)
    n_reps = noise_by_rep.shape[0]
    data = np.stack([fig2_sample(noise, alpha) for noise in noise_by_rep])
    # Run b = (theta0 index) * n_reps + rep.
    x = np.tile(data, (len(theta0s), 1))
    theta0 = np.repeat(theta0s, n_reps)
    run = run_symmetric(
        x, theta0, alpha, method, n_iter, estep=estep, n_sweeps=n_sweeps, oem_weight_update=FIG2_OEM_WEIGHT_UPDATE
    )
    errors = iterate_errors(run, method, alpha)
    # The weight paired with the last mean in the error (oEM: the one its E-step used).
    weight_final = run.weight[-2] if method == "oEM" else run.weight[-1]
    table = pd.DataFrame(
        {
            "method": method,
            "alpha": alpha,
            "theta0": theta0,
            "rep": np.tile(np.arange(n_reps), len(theta0s)),
            "theta_final": run.theta[-1],
            "weight_final": weight_final,
            "error_iter4": errors[min(error_iteration, n_iter) - 1],
            "error_final": errors[-1],
            "iters_to_converge": iterations_to_converge(errors, converge_factor),
            "n_iter": n_iter,
            "estep": estep if method == "sEM" else "semi-relaxed",
            "sinkhorn_row_error_max": (run.marginal_error.max(axis=0) if run.marginal_error is not None else np.nan),
            "right_sign": right_sign(run.theta[-1], weight_final, alpha),
        }
    )
    return table


def run_fig2(
    *,
    seed: int,
    alphas,
    theta0s,
    n_reps: int = 10,
    n_samples: int = 1000,
    methods=SYMMETRIC_METHODS,
    vem_iterations: int = 200,
    oem_iterations: int = 200,
    sem_iterations: int = 25,
    estep: str = "exact",
    sinkhorn_sweeps: int = 200,
    error_iteration: int = 4,
    converge_factor: float = 1.5,
) -> pd.DataFrame:
    r"""Every run of Figure 2 for the given slice of the grid.

    Parameters
    ----------
    seed : int
        Base seed; repetition ``r`` uses the noise of :func:`fig2_noise` ``(seed, N, r)``.
    alphas, theta0s : sequence of float or ``{start, stop, num}``
        The :math:`\alpha^*` values (weight of the component at +1) and initial means.
    n_reps, n_samples : int
        Repetitions (noise vectors) and sample size ``N``.
    methods : sequence of {"vEM", "oEM", "sEM"}
    vem_iterations, oem_iterations, sem_iterations : int
        Iterations per method.
    estep : {"exact", "sinkhorn"}
        sEM E-step: exact scalar root, or ``sinkhorn_sweeps`` log-domain sweeps.
    error_iteration : int
        The iteration whose error is reported as ``error_iter4`` (4 in the paper; the
        notebook's ``dist[..., 3]``).
    converge_factor : float
        ``iters_to_converge`` counts iterations until the error is below this multiple
        of the final error (1.5 in the paper).

    Returns
    -------
    pandas.DataFrame
        One row per (method, alpha, theta0, rep), with columns ``method, alpha, theta0,
        rep, theta_final, weight_final`` (the weight paired with ``theta_final`` in the
        error: :math:`\alpha^*`, or oEM's :math:`w_{T-1}`), ``error_iter4, error_final,
        iters_to_converge`` (:func:`iterations_to_converge`), ``n_iter, estep,
        sinkhorn_row_error_max`` (NaN unless sweeps ran) and ``right_sign``
        (:func:`right_sign` of the last iterate).
    """
    alphas, theta0s = grid(alphas), grid(theta0s)
    unknown = set(methods) - set(SYMMETRIC_METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {SYMMETRIC_METHODS}.")
    if estep not in ESTEP_VARIANTS:
        raise ValueError(f"estep must be one of {ESTEP_VARIANTS}, got {estep!r}.")
    if np.any((alphas < 0) | (alphas > 1)):
        raise ValueError("alphas must lie in [0, 1].")
    if n_reps < 1 or n_samples < 1:
        raise ValueError("n_reps and n_samples must be positive.")
    if min(vem_iterations, oem_iterations, sem_iterations, error_iteration) < 1:
        raise ValueError("iteration counts and error_iteration must be >= 1 (the start is not an iteration).")
    n_iter = {"vEM": vem_iterations, "oEM": oem_iterations, "sEM": sem_iterations}
    noise = np.stack([fig2_noise(seed, n_samples, rep) for rep in range(n_reps)])
    tables = [
        run_alpha(
            noise,
            alpha,
            theta0s,
            method,
            n_iter[method],
            estep=estep,
            n_sweeps=sinkhorn_sweeps,
            error_iteration=error_iteration,
            converge_factor=converge_factor,
        )
        for method in methods
        for alpha in alphas
    ]
    return pd.concat(tables, ignore_index=True)


def combine_chunks(chunks) -> pd.DataFrame:
    """Concatenate chunk tables in a canonical order (method as in vEM, oEM, sEM; alpha;
    theta0; rep), so the aggregated table does not depend on how the grid was split."""
    runs = pd.concat(list(chunks), ignore_index=True)
    order = {method: i for i, method in enumerate(SYMMETRIC_METHODS)}
    runs = runs.sort_values(
        ["method", "alpha", "theta0", "rep"],
        key=lambda col: col.map(order) if col.name == "method" else col,
        kind="stable",
    )
    return runs.reset_index(drop=True)


def run_estep_check(
    *,
    seed: int,
    alphas,
    theta0s,
    n_reps: int = 2,
    n_samples: int = 1000,
    sem_iterations: int = 25,
    sinkhorn_sweeps: int = 200,
) -> pd.DataFrame:
    r"""Run sEM with both E-steps on a slice and tabulate how far apart they end.

    Returns
    -------
    pandas.DataFrame
        One row per (alpha, theta0, rep): ``theta_final_exact``,
        ``theta_final_sinkhorn``, ``theta_abs_diff``, ``error_final_abs_diff`` and
        ``sinkhorn_row_error_max`` (the largest row-marginal L1 error left by the sweeps
        over the outer iterations; agreement is expected where it is tiny).
    """
    common = dict(
        seed=seed,
        alphas=alphas,
        theta0s=theta0s,
        n_reps=n_reps,
        n_samples=n_samples,
        methods=("sEM",),
        sem_iterations=sem_iterations,
        sinkhorn_sweeps=sinkhorn_sweeps,
    )
    exact = run_fig2(estep="exact", **common)
    sweeps = run_fig2(estep="sinkhorn", **common)
    keys = ["alpha", "theta0", "rep"]
    return pd.DataFrame(
        {
            **{k: exact[k] for k in keys},
            "theta_final_exact": exact["theta_final"],
            "theta_final_sinkhorn": sweeps["theta_final"],
            "theta_abs_diff": (exact["theta_final"] - sweeps["theta_final"]).abs(),
            "error_final_abs_diff": (exact["error_final"] - sweeps["error_final"]).abs(),
            "sinkhorn_row_error_max": sweeps["sinkhorn_row_error_max"],
        }
    )
