r"""Loss landscapes of the negative log-likelihood and of the EOT loss (issue 4, section 2).

Model: one-dimensional data, two Gaussian components with unit variance and known
weights ``w = (w_0, w_1)``; the cost is ``C_ik = -log N(x_i; mu_k, 1)``. With
``a_ik = log w_k - C_ik`` the two objectives of the paper are

.. math::

    \mathrm{NLL}(\mu) = -\frac1n \sum_i \log \sum_k e^{a_{ik}}, \qquad
    L_{\mathrm{EOT}}(\mu) = \max_{g \in \mathbb{R}^K}\;
        \sum_k w_k g_k - \frac1n \sum_i \log \sum_k e^{a_{ik} + g_k}.

The second line is the semi-dual of the balanced entropic problem
``min <P, C> + KL(P || (1/n) x w)`` over plans with rows ``1/n`` and columns ``w``
(epsilon = 1). The NLL is the same concave dual objective evaluated at ``g = 0``,
hence ``L_EOT >= NLL``, with equality exactly when ``g = 0`` is optimal, i.e. when the
posterior column masses equal ``w``.

For ``K = 2`` only ``u = g_1 - g_0`` matters. With ``D_i = a_i1 - a_i0`` (an affine
function of ``x_i``) and ``sigma`` the logistic function,

.. math::

    L_{\mathrm{EOT}} = -\overline{a_{\cdot 0}} + \max_u \Big[ w_1 u
        - \frac1n \sum_i \operatorname{softplus}(D_i + u) \Big],

whose optimality condition ``(1/n) sum_i sigma(D_i + u) = w_1`` is one monotone scalar
equation, the one the symmetric model's E-step solves too.
:func:`two_component_losses` solves it for many parameter values at once with the shared
K = 2 solver (:func:`sinkhorn_em_repro.symmetric.solve_balanced_offset`, safeguarded
Newton), which is what makes a 2-D grid over ``(mu_0, mu_1)`` affordable; the test suite
checks it against the core's Sinkhorn-based :func:`sinkhorn_em.eot_loss`.

Gradients follow from Danskin's theorem (the optimal ``u`` is unique):
``dL/dmu_k = -(1/n) sum_i s_ik (x_i - mu_k)`` with ``s_ik`` the posterior
responsibilities (NLL) or ``n`` times the optimal plan (EOT). Stationary points of the
NLL are therefore the fixed points of EM with known weights, those of the EOT loss the
fixed points of Sinkhorn-EM.

The experiment functions follow the project convention: parameters in, DataFrame out,
no file I/O, samples drawn from :func:`sinkhorn_em_repro.seeding.derive_rng`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit

from sinkhorn_em_repro.seeding import derive_seed
from sinkhorn_em_repro.symmetric import solve_balanced_offset

__all__ = [
    "TwoComponentLosses",
    "find_local_minima",
    "landscape_minima",
    "landscape_sample",
    "run_landscape_1d",
    "run_landscape_2d",
    "stationary_points_2d",
    "symmetric_losses_core",
    "two_component_losses",
]

LOSSES = ("nll", "eot")
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
# Grid points per vectorised block: (block, n) float arrays stay a few tens of MB.
_BLOCK_ELEMENTS = 2_000_000


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------
def _check_sample(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"The landscape model is one-dimensional: x must have shape (n,) or (n, 1), got {x.shape}.")
    if x.size < 2:
        raise ValueError(f"x must hold at least 2 samples, got {x.size}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf; remove or impute those samples first.")
    return x


def _check_weights(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (2,):
        raise ValueError(f"weights must hold exactly 2 mixing weights, got shape {weights.shape}.")
    if np.any(weights <= 0.0) or np.any(weights >= 1.0):
        raise ValueError(f"weights must lie strictly between 0 and 1 (the EOT loss needs both columns), got {weights}.")
    if abs(weights.sum() - 1.0) > 1e-12:
        raise ValueError(f"weights must sum to 1, got {weights} (sum {weights.sum()!r}).")
    return weights


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}.")
    return alpha


def _theta_grid(theta_min: float, theta_max: float, n_grid: int) -> np.ndarray:
    if not theta_min < theta_max:
        raise ValueError(f"theta_min must be below theta_max, got [{theta_min}, {theta_max}].")
    if int(n_grid) < 3:
        raise ValueError(f"n_grid must be at least 3 to detect an interior minimum, got {n_grid}.")
    return np.linspace(float(theta_min), float(theta_max), int(n_grid))


# --------------------------------------------------------------------------------------
# Vectorised K = 2 losses
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TwoComponentLosses:
    """NLL, EOT loss and their gradients at ``G`` mean pairs (see :func:`two_component_losses`).

    Attributes
    ----------
    nll, eot : ndarray of shape (G,)
        Loss values (``eot >= nll`` up to rounding).
    nll_grad, eot_grad : ndarray of shape (G, 2)
        Gradients with respect to ``(mu_0, mu_1)``.
    dual : ndarray of shape (G,)
        The optimal ``u = g_1 - g_0`` of the balanced problem (``0`` iff ``eot == nll``).
    column_error : ndarray of shape (G,)
        ``|(1/n) sum_i sigma(D_i + u) - w_1|``, the remaining column-marginal error.
    """

    nll: np.ndarray
    eot: np.ndarray
    nll_grad: np.ndarray
    eot_grad: np.ndarray
    dual: np.ndarray
    column_error: np.ndarray


def two_component_losses(x, weights, means, *, max_iter: int = 200) -> TwoComponentLosses:
    r"""NLL and EOT loss of a two-component, unit-variance 1-D mixture at many mean pairs.

    Parameters
    ----------
    x : array_like of shape (n,) or (n, 1)
        The sample.
    weights : array_like of shape (2,)
        Known mixing weights ``(w_0, w_1)``, strictly between 0 and 1.
    means : array_like of shape (G, 2) or (2,)
        Mean pairs ``(mu_0, mu_1)`` at which to evaluate.
    max_iter : int, default=200
        Newton/bisection iterations at most of the balanced solver.

    Returns
    -------
    TwoComponentLosses
        With ``C_ik = (x_i - mu_k)^2 / 2 + log(2 pi) / 2``, ``a_ik = log w_k - C_ik`` and
        ``D_i = a_i1 - a_i0 = log(w_1 / w_0) + (mu_1 - mu_0) x_i - (mu_1^2 - mu_0^2) / 2``:
        ``NLL = -mean_i a_i0 - mean_i softplus(D_i)`` and
        ``L_EOT = -mean_i a_i0 + w_1 u* - mean_i softplus(D_i + u*)`` where ``u*`` solves
        ``mean_i sigma(D_i + u) = w_1`` (the one K = 2 balanced solver,
        :func:`sinkhorn_em_repro.symmetric.solve_balanced_offset`).

    Notes
    -----
    Epsilon is 1, as in the paper's landscapes. Work is split into blocks of grid
    points so memory stays bounded whatever ``G``.
    """
    x = _check_sample(x)
    weights = _check_weights(weights)
    means = np.asarray(means, dtype=float)
    single = means.ndim == 1
    means = np.atleast_2d(means)
    if means.ndim != 2 or means.shape[1] != 2:
        raise ValueError(f"means must have shape (G, 2) or (2,), got {np.shape(means)}.")
    if not np.all(np.isfinite(means)):
        raise ValueError("means contain NaN or inf.")
    n = x.size
    mu0, mu1 = means[:, 0], means[:, 1]
    slope = mu1 - mu0
    offset = np.log(weights[1] / weights[0]) - 0.5 * (mu1**2 - mu0**2)
    x_mean, x2_mean = x.mean(), np.mean(x**2)
    # mean_i a_i0 in closed form: log w_0 - log(2 pi)/2 - mean (x - mu_0)^2 / 2.
    mean_a0 = np.log(weights[0]) - _HALF_LOG_2PI - 0.5 * (x2_mean - 2.0 * mu0 * x_mean + mu0**2)

    G = means.shape[0]
    nll = np.empty(G)
    eot = np.empty(G)
    dual = np.empty(G)
    column_error = np.empty(G)
    nll_grad = np.empty((G, 2))
    eot_grad = np.empty((G, 2))
    block = max(1, _BLOCK_ELEMENTS // n)
    uniform = np.full((1, n), 1.0 / n)
    for start in range(0, G, block):
        sl = slice(start, min(start + block, G))
        D = offset[sl, None] + slope[sl, None] * x[None, :]
        # u = 0 is the NLL point and often close to the root: start there.
        u = solve_balanced_offset(D, uniform, np.full(D.shape[0], weights[1]), np.zeros(D.shape[0]), max_iter)
        err = np.abs(expit(D + u[:, None]).mean(axis=1) - weights[1])
        nll[sl] = -mean_a0[sl] - np.logaddexp(0.0, D).mean(axis=1)
        eot[sl] = -mean_a0[sl] + weights[1] * u - np.logaddexp(0.0, D + u[:, None]).mean(axis=1)
        dual[sl] = u
        column_error[sl] = err
        for shift, grad in ((0.0, nll_grad), (u, eot_grad)):
            # s_i1 = sigma(D_i + shift) is the mass of sample i on component 1 (times n).
            s1 = expit(D + np.reshape(shift, (-1, 1)))
            mass1 = s1.mean(axis=1)
            first1 = (s1 * x[None, :]).mean(axis=1)
            grad[sl, 1] = -(first1 - mass1 * mu1[sl])
            grad[sl, 0] = -((x_mean - first1) - (1.0 - mass1) * mu0[sl])
    if single:
        return TwoComponentLosses(nll[0], eot[0], nll_grad[0], eot_grad[0], dual[0], column_error[0])
    return TwoComponentLosses(nll, eot, nll_grad, eot_grad, dual, column_error)


def symmetric_losses_core(x, alpha: float, theta: float, *, sinkhorn_tol: float = 1e-10) -> tuple[float, float]:
    """NLL and EOT loss of the symmetric model from the core library (the truth source).

    The model has means ``(theta, -theta)``, weights ``(alpha, 1 - alpha)`` and unit
    variance; the values come from :func:`sinkhorn_em.nll` and :func:`sinkhorn_em.eot_loss`
    (log-domain Sinkhorn).

    Returns
    -------
    (nll, eot) : tuple of float
    """
    from sinkhorn_em.losses import eot_loss, nll

    X = _check_sample(x)[:, None]
    weights = np.array([alpha, 1.0 - alpha])
    means = np.array([[theta], [-theta]])
    variances = np.ones(2)
    return (
        float(nll(X, weights, means, variances, covariance_type="spherical")),
        float(eot_loss(X, weights, means, variances, covariance_type="spherical", tol=sinkhorn_tol)),
    )


# --------------------------------------------------------------------------------------
# Samples and minima
# --------------------------------------------------------------------------------------
def landscape_sample(n: int, theta_star: float, alpha: float, seed: int, *keys) -> np.ndarray:
    """The sample of one landscape: ``n`` draws of ``alpha N(theta*, 1) + (1 - alpha) N(-theta*, 1)``.

    The generator is seeded by ``derive_seed(seed, "landscape", *keys, alpha)``, so the
    same setting always gives the same sample whatever job computes it.

    Returns
    -------
    x : ndarray of shape (n,)
    """
    from sinkhorn_em.synthetic import symmetric_mixture

    if int(n) < 2:
        raise ValueError(f"n must be at least 2, got {n}.")
    alpha = _check_alpha(alpha)
    rng = np.random.default_rng(_sample_seed(seed, alpha, *keys))
    return np.asarray(symmetric_mixture(int(n), float(theta_star), alpha, rng).X, dtype=float).reshape(-1)


def _sample_seed(seed: int, alpha: float, *keys) -> int:
    # Rounded so that 0.55 from a config and 0.5500000000000002 from linspace agree.
    return derive_seed(int(seed), "landscape", *keys, round(float(alpha), 10))


def find_local_minima(grid, values, refine=None) -> np.ndarray:
    """Local minima of a function sampled on an increasing 1-D grid.

    A grid point ``i`` (interior only) is a local minimum when
    ``values[i-1] > values[i] <= values[i+1]``; on a plateau only its first point counts.
    With ``refine``, each location is then polished by bounded Brent minimisation of
    ``refine`` on ``[grid[i-1], grid[i+1]]``.

    Parameters
    ----------
    grid : array_like of shape (m,)
        Strictly increasing abscissae.
    values : array_like of shape (m,)
        Function values on the grid.
    refine : callable, optional
        The function itself, ``float -> float``.

    Returns
    -------
    minima : ndarray
        Locations in increasing order (grid points, or refined points).

    Notes
    -----
    Endpoints are never reported: a minimum at the boundary is a property of the chosen
    window, not of the loss. Two minima closer than one grid step cannot be separated.
    """
    grid = np.asarray(grid, dtype=float)
    values = np.asarray(values, dtype=float)
    if grid.ndim != 1 or grid.shape != values.shape:
        raise ValueError(f"grid and values must be 1-D of equal length, got {grid.shape} and {values.shape}.")
    if grid.size and np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be strictly increasing.")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or inf; the loss could not be evaluated everywhere.")
    inner = np.arange(1, grid.size - 1)
    is_min = (values[inner - 1] > values[inner]) & (values[inner] <= values[inner + 1])
    indices = inner[is_min]
    if refine is None:
        return grid[indices]
    refined = []
    for i in indices:
        res = optimize.minimize_scalar(
            refine, bounds=(grid[i - 1], grid[i + 1]), method="bounded", options={"xatol": 1e-7}
        )
        # Brent may stop on the bracket's edge when the minimum is flat; keep the best point.
        refined.append(res.x if res.fun <= values[i] else grid[i])
    return np.asarray(refined, dtype=float)


# --------------------------------------------------------------------------------------
# 1-D landscape of the symmetric model
# --------------------------------------------------------------------------------------
def run_landscape_1d(
    alpha: float,
    *,
    n: int = 4000,
    theta_star: float = 1.0,
    theta_min: float = -3.0,
    theta_max: float = 3.0,
    n_grid: int = 241,
    seed: int = 0,
    sinkhorn_tol: float = 1e-10,
) -> pd.DataFrame:
    r"""NLL(theta) and L_EOT(theta) of the symmetric model on a grid, for one ``alpha*``.

    The sample (see :func:`landscape_sample`) comes from
    ``alpha* N(theta*, 1) + (1 - alpha*) N(-theta*, 1)``; the model has means
    ``(theta, -theta)``, weights ``(alpha*, 1 - alpha*)`` and unit variance. Both losses
    are computed by the core library (:func:`symmetric_losses_core`).

    Returns
    -------
    DataFrame
        One row per grid point: ``alpha, theta_star, n, theta, nll, eot, eot_minus_nll``.
    """
    alpha = _check_alpha(alpha)
    theta = _theta_grid(theta_min, theta_max, n_grid)
    x = landscape_sample(n, theta_star, alpha, seed, "1d")
    values = np.array([symmetric_losses_core(x, alpha, t, sinkhorn_tol=sinkhorn_tol) for t in theta])
    return pd.DataFrame(
        {
            "alpha": alpha,
            "theta_star": float(theta_star),
            "n": int(n),
            "theta": theta,
            "nll": values[:, 0],
            "eot": values[:, 1],
            "eot_minus_nll": values[:, 1] - values[:, 0],
        }
    )


def _format_locations(locations) -> str:
    return ";".join(f"{v:.4f}" for v in locations)


def landscape_minima(
    curves: pd.DataFrame,
    *,
    n: int = 4000,
    theta_star: float = 1.0,
    seed: int = 0,
    sinkhorn_tol: float = 1e-10,
) -> pd.DataFrame:
    """Local minima of each loss per ``alpha*`` from the curves of :func:`run_landscape_1d`.

    Minima are detected on the grid and refined by Brent's method on the loss itself
    (the sample is regenerated from ``seed``, so the settings must be those that produced
    ``curves``).

    Returns
    -------
    DataFrame
        One row per ``(alpha, loss)`` with ``alpha, loss`` (``nll`` | ``eot``),
        ``n_local_minima``, ``minima`` (``;``-separated refined locations),
        ``global_minimizer`` (the refined minimum of lowest value; minima within ``1e-10``
        of it are ties, as at ``alpha* = 1/2`` where ``theta -> -theta`` is a symmetry, and
        the one closest to ``+theta*`` is reported), ``value_at_global``,
        ``grid_argmin`` (the grid point of lowest value), ``grid_step``,
        ``min_gap_eot_minus_nll`` (over the grid, same for both rows; Claim 1 says
        ``>= 0``) and ``global_minimizers_agree`` (the two global minimisers are at most
        one grid step apart).
    """
    required = {"alpha", "theta", "nll", "eot"}
    if not required <= set(curves.columns):
        raise ValueError(f"curves must have columns {sorted(required)}, got {list(curves.columns)}.")
    rows = []
    for alpha, group in curves.groupby("alpha", sort=True):
        group = group.sort_values("theta")
        theta = group["theta"].to_numpy()
        step = float(np.min(np.diff(theta)))
        x = landscape_sample(n, theta_star, alpha, seed, "1d")
        # The column computed before rounding to CSV keeps gaps far below 1e-10 visible.
        gaps = group["eot_minus_nll"] if "eot_minus_nll" in group else group["eot"] - group["nll"]
        gap = float(gaps.min())
        argmins = {loss: theta[np.argmin(group[loss].to_numpy())] for loss in LOSSES}
        per_alpha = []
        for index, loss in enumerate(LOSSES):

            def value(t, _index=index):
                return symmetric_losses_core(x, alpha, t, sinkhorn_tol=sinkhorn_tol)[_index]

            minima = find_local_minima(theta, group[loss].to_numpy(), refine=value)
            minima_values = np.array([value(m) for m in minima])
            best = None
            if minima.size:
                ties = np.flatnonzero(minima_values <= minima_values.min() + 1e-10)
                best = int(ties[np.argmin(np.abs(minima[ties] - theta_star))])
            per_alpha.append(
                {
                    "alpha": alpha,
                    "loss": loss,
                    "n_local_minima": int(minima.size),
                    "minima": _format_locations(minima),
                    "global_minimizer": minima[best] if best is not None else np.nan,
                    "value_at_global": minima_values[best] if best is not None else np.nan,
                    "grid_argmin": argmins[loss],
                    "grid_step": step,
                    "min_gap_eot_minus_nll": gap,
                }
            )
        distance = abs(per_alpha[0]["global_minimizer"] - per_alpha[1]["global_minimizer"])
        for row in per_alpha:
            row["global_minimizers_agree"] = bool(distance <= step)
        rows.extend(per_alpha)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# 2-D landscape over unconstrained means
# --------------------------------------------------------------------------------------
def run_landscape_2d(
    *,
    alpha: float = 0.7,
    n: int = 4000,
    theta_star: float = 1.0,
    theta_min: float = -3.0,
    theta_max: float = 3.0,
    n_grid: int = 121,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Both losses and their gradients on a square grid of free means ``(theta1, theta2)``.

    The sample (:func:`landscape_sample`) comes from
    ``alpha* N(theta*, 1) + (1 - alpha*) N(-theta*, 1)``; the model has means
    ``(theta1, theta2)``, known weights ``(alpha*, 1 - alpha*)`` and unit variance, so the
    truth is ``(theta*, -theta*)``. Values come from the vectorised solver
    :func:`two_component_losses` (checked against the core's Sinkhorn in the tests, and
    at every stationary point by :func:`stationary_points_2d`).

    Returns
    -------
    DataFrame
        One row per grid point (``theta1`` varies slowest): ``alpha, theta_star, n, theta1,
        theta2, nll, eot, nll_grad1, nll_grad2, eot_grad1, eot_grad2``.
    """
    alpha = _check_alpha(alpha)
    axis = _theta_grid(theta_min, theta_max, n_grid)
    x = landscape_sample(n, theta_star, alpha, seed, "2d")
    t1, t2 = np.meshgrid(axis, axis, indexing="ij")
    means = np.column_stack([t1.ravel(), t2.ravel()])
    losses = two_component_losses(x, [alpha, 1.0 - alpha], means)
    return pd.DataFrame(
        {
            "alpha": alpha,
            "theta_star": float(theta_star),
            "n": int(n),
            "theta1": means[:, 0],
            "theta2": means[:, 1],
            "nll": losses.nll,
            "eot": losses.eot,
            "nll_grad1": losses.nll_grad[:, 0],
            "nll_grad2": losses.nll_grad[:, 1],
            "eot_grad1": losses.eot_grad[:, 0],
            "eot_grad2": losses.eot_grad[:, 1],
        }
    )


def _grid_fields(grid: pd.DataFrame, loss: str):
    """Axis and the ``(m, m)`` value and gradient-norm fields of ``loss`` from a 2-D grid table."""
    grid = grid.sort_values(["theta1", "theta2"])
    axis = np.unique(grid["theta1"].to_numpy())
    m = axis.size
    if len(grid) != m * m or not np.allclose(np.unique(grid["theta2"].to_numpy()), axis):
        raise ValueError("The 2-D landscape table must hold a full square grid (same axis for theta1 and theta2).")
    values = grid[loss].to_numpy().reshape(m, m)
    grad_norm = np.hypot(grid[f"{loss}_grad1"].to_numpy(), grid[f"{loss}_grad2"].to_numpy()).reshape(m, m)
    return axis, values, grad_norm


def _grid_local_minima_2d(field: np.ndarray) -> np.ndarray:
    """Interior indices ``(i, j)`` where ``field`` is <= all 8 neighbours."""
    m1, m2 = field.shape
    centre = field[1:-1, 1:-1]
    is_min = np.ones_like(centre, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            is_min &= centre <= field[1 + di : m1 - 1 + di, 1 + dj : m2 - 1 + dj]
    return np.argwhere(is_min) + 1


def _central_hessian(gradient, point: np.ndarray, step: float) -> np.ndarray:
    columns = [(gradient(point + step * e) - gradient(point - step * e)) / (2.0 * step) for e in np.eye(2)]
    hessian = np.column_stack(columns)
    return 0.5 * (hessian + hessian.T)


def stationary_points_2d(
    grid: pd.DataFrame,
    *,
    alpha: float = 0.7,
    n: int = 4000,
    theta_star: float = 1.0,
    seed: int = 0,
    grad_tol: float = 1e-9,
    sinkhorn_tol: float = 1e-10,
) -> pd.DataFrame:
    r"""Stationary points of both losses over ``(theta1, theta2)``, found numerically.

    Method, for each loss:

    1. candidates: interior grid points where the gradient norm ``||grad L||`` (columns
       of ``grid``, from :func:`run_landscape_2d`) is a minimum of its 3 x 3 neighbourhood;
    2. each candidate is refined by solving ``grad L(theta) = 0`` with MINPACK's hybrid
       Powell method (:func:`scipy.optimize.root`, Jacobian = central differences of the
       analytic gradient); a root is kept when ``||grad L|| <= grad_tol`` and it lies in
       the grid's box, and roots closer than ``1e-5`` are merged;
    3. each root is classified by the eigenvalues of the (central-difference) Hessian:
       ``minimum`` (both > 0), ``saddle`` (opposite signs), ``maximum`` (both < 0);
    4. the minimum of lowest value is the global one; every other stationary point is
       ``spurious``.

    The sample is regenerated from ``seed`` (same settings as the grid). Every point is
    re-evaluated by the core library (``value_core``: :func:`sinkhorn_em.nll` or the
    Sinkhorn-based :func:`sinkhorn_em.eot_loss`) as a check of the vectorised solver.

    Returns
    -------
    DataFrame
        One row per stationary point: ``alpha, loss, theta1, theta2, value, value_core,
        grad_norm, hessian_eig_min, hessian_eig_max, kind, spurious, n_candidates``.
    """
    from sinkhorn_em.losses import eot_loss, nll

    alpha = _check_alpha(alpha)
    x = landscape_sample(n, theta_star, alpha, seed, "2d")
    weights = np.array([alpha, 1.0 - alpha])
    rows = []
    for loss in LOSSES:
        axis, _, grad_norm = _grid_fields(grid, loss)
        step = float(axis[1] - axis[0])
        candidates = _grid_local_minima_2d(grad_norm)

        def gradient(point, _loss=loss):
            result = two_component_losses(x, weights, point)
            return result.nll_grad if _loss == "nll" else result.eot_grad

        roots: list[np.ndarray] = []
        for i, j in candidates:
            start = np.array([axis[i], axis[j]])
            sol = optimize.root(gradient, start, jac=lambda p: _central_hessian(gradient, p, 1e-5), method="hybr")
            point = sol.x
            if not np.all(np.isfinite(point)) or np.linalg.norm(gradient(point)) > grad_tol:
                continue
            if np.any(point < axis[0] - step) or np.any(point > axis[-1] + step):
                continue
            if any(np.linalg.norm(point - r) < 1e-5 for r in roots):
                continue
            roots.append(point)
        found = []
        for point in sorted(roots, key=lambda p: (p[0], p[1])):
            result = two_component_losses(x, weights, point)
            value = float(result.nll if loss == "nll" else result.eot)
            eigenvalues = np.linalg.eigvalsh(_central_hessian(gradient, point, 1e-4))
            if eigenvalues[0] > 0:
                kind = "minimum"
            elif eigenvalues[1] < 0:
                kind = "maximum"
            else:
                kind = "saddle"
            core = nll if loss == "nll" else eot_loss
            extra = {} if loss == "nll" else {"tol": sinkhorn_tol}
            value_core = float(
                core(x[:, None], weights, point[:, None], np.ones(2), covariance_type="spherical", **extra)
            )
            found.append(
                {
                    "alpha": alpha,
                    "loss": loss,
                    "theta1": point[0],
                    "theta2": point[1],
                    "value": value,
                    "value_core": value_core,
                    "grad_norm": float(np.linalg.norm(gradient(point))),
                    "hessian_eig_min": eigenvalues[0],
                    "hessian_eig_max": eigenvalues[1],
                    "kind": kind,
                    "n_candidates": len(candidates),
                }
            )
        minima_values = [f["value"] for f in found if f["kind"] == "minimum"]
        best = min(minima_values) if minima_values else np.inf
        for f in found:
            # Ties (within 1e-10) are all global, e.g. the label swap at alpha* = 1/2.
            f["spurious"] = not (f["kind"] == "minimum" and f["value"] <= best + 1e-10)
        rows.extend(found)
    columns = [
        "alpha",
        "loss",
        "theta1",
        "theta2",
        "value",
        "value_core",
        "grad_norm",
        "hessian_eig_min",
        "hessian_eig_max",
        "kind",
        "spurious",
        "n_candidates",
    ]
    return pd.DataFrame(rows, columns=columns)
