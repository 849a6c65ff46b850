r"""The 2-D landscape over two free means: both losses and gradients on a grid, and the classified stationary points."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize

from sinkhorn_em_repro.experiments.landscape.curves import _theta_grid
from sinkhorn_em_repro.experiments.landscape.losses import LOSSES, _check_alpha, landscape_sample, two_component_losses

__all__ = ["run_landscape_2d", "stationary_points_2d"]


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
