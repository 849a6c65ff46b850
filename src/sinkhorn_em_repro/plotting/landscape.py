"""Figures of the landscape family: NLL vs EOT loss (reads the tables, never recomputes).

* :func:`plot_landscape_1d` — ``results/figures/landscape.pdf``: one small panel per
  ``alpha*`` with both losses of the symmetric model and their local minima;
* :func:`plot_landscape_2d` — ``results/figures/landscape_2d.pdf``: both losses over free
  means ``(theta1, theta2)`` as heat-maps with the stationary points marked.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors
from matplotlib.lines import Line2D

from sinkhorn_em_repro import outputs
from sinkhorn_em_repro.plotting.style import LOSS_COLORS, LOSS_LABELS, apply_style, load_table, save_figure

__all__ = ["plot_landscape_1d", "plot_landscape_2d"]

LOSS_ORDER = ("nll", "eot")
# Markers of the 2-D stationary points, by (kind, spurious).
_STATIONARY_MARKERS = {
    ("minimum", False): dict(marker="*", s=150, facecolor="white", edgecolor="black", label="global minimum"),
    ("minimum", True): dict(
        marker="o", s=60, facecolor="none", edgecolor="white", linewidths=1.8, label="spurious local minimum"
    ),
    ("saddle", True): dict(marker="X", s=60, facecolor="white", edgecolor="black", label="saddle point"),
    ("maximum", True): dict(marker="^", s=60, facecolor="white", edgecolor="black", label="local maximum"),
}


def _minima_locations(cell) -> np.ndarray:
    if not isinstance(cell, str) or not cell:
        return np.empty(0)
    return np.array([float(v) for v in cell.split(";")])


def plot_landscape_1d(
    curves, minima, pdf_path: str | Path, *, png_path: str | Path | None = None, n_cols: int = 5, y_window: float = 0.8
) -> None:
    """Small multiples of NLL(theta) and L_EOT(theta), one panel per ``alpha*``.

    Each panel shows both losses minus the minimum of the NLL over the grid (so the
    common global minimum sits at 0) in the window ``[0, y_window]``, where the local
    minima and the barriers between them live; the dots are the refined local minima
    of the minima table.

    Parameters
    ----------
    curves : DataFrame or path
        The table of :func:`sinkhorn_em_repro.experiments.landscape.run_landscape_1d` for
        every ``alpha*`` (columns ``alpha, theta_star, theta, nll, eot``).
    minima : DataFrame or path
        The table of :func:`sinkhorn_em_repro.experiments.landscape.landscape_minima`.
    pdf_path : path
        Output PDF.
    png_path : path, optional
        Output PNG (default: next to the PDF).
    n_cols : int
        Panels per row.
    y_window : float
        Height of the loss window above the minimum.
    """
    curves, minima = load_table(curves, outputs.LANDSCAPE_CURVES), load_table(minima, outputs.LANDSCAPE_MINIMA)
    apply_style()
    alphas = np.sort(curves["alpha"].unique())
    n_cols = min(n_cols, alphas.size)
    n_rows = math.ceil(alphas.size / n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(1.55 * n_cols + 0.5, 1.3 * n_rows + 0.7), sharex=True, sharey=True, squeeze=False
    )
    for ax, alpha in zip(axes.flat, alphas):
        group = curves[curves["alpha"] == alpha].sort_values("theta")
        theta = group["theta"].to_numpy()
        theta_star = float(group["theta_star"].iloc[0])
        floor = group["nll"].min()
        for truth in (-theta_star, theta_star):
            ax.axvline(truth, color="0.85", lw=0.6, zorder=0)
        counts = {}
        for loss in LOSS_ORDER:
            values = group[loss].to_numpy() - floor
            ax.plot(
                theta,
                values,
                color=LOSS_COLORS[loss],
                lw=1.3 if loss == "eot" else 1.1,
                ls="-" if loss == "eot" else "--",
                zorder=2 if loss == "eot" else 2.5,
            )
            row = minima[np.isclose(minima["alpha"], alpha) & (minima["loss"] == loss)]
            locations = _minima_locations(row["minima"].iloc[0]) if len(row) else np.empty(0)
            counts[loss] = locations.size
            ax.plot(
                locations,
                np.interp(locations, theta, values),
                ls="none",
                marker="o",
                ms=3.5,
                color=LOSS_COLORS[loss],
                markeredgecolor="white",
                markeredgewidth=0.4,
                zorder=3,
            )
        ax.set_title(
            rf"$\alpha^* = {alpha:g}$" + f"\n# minima: NLL {counts['nll']}, EOT {counts['eot']}",
            pad=3,
            fontsize=7,
            linespacing=1.3,
        )
        ax.set_ylim(-0.04 * y_window, y_window)
    for ax in axes.flat[alphas.size :]:
        ax.set_visible(False)
    for ax in axes[-1, :]:
        ax.set_xlabel(r"$\theta$")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"loss $-$ min NLL")
    handles = [
        Line2D([], [], color=LOSS_COLORS["nll"], ls="--", label=LOSS_LABELS["nll"]),
        Line2D([], [], color=LOSS_COLORS["eot"], ls="-", label=LOSS_LABELS["eot"]),
        Line2D([], [], color="0.4", ls="none", marker="o", ms=3.5, label="local minimum"),
        Line2D([], [], color="0.85", lw=0.8, label=r"$\pm\theta^*$"),
    ]
    n = int(curves["n"].iloc[0]) if "n" in curves else None
    fig.suptitle(
        r"Symmetric model: means $(\theta, -\theta)$, weights $(\alpha^*, 1-\alpha^*)$, unit variance"
        + (f", n = {n}" if n else ""),
        y=0.995,
    )
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.06, 1, 0.98), h_pad=0.6, w_pad=0.3)
    save_figure(fig, pdf_path, png_path)


def plot_landscape_2d(grid, stationary, pdf_path: str | Path, *, png_path: str | Path | None = None) -> None:
    """Heat-maps of both losses over ``(theta1, theta2)`` with stationary points marked.

    Both panels show ``L - min NLL`` on one colour scale (a power norm, so the basins
    near the minimum stay visible), with contour lines. The dashed anti-diagonal is the
    constrained symmetric model ``theta2 = -theta1`` of :func:`plot_landscape_1d`.

    Parameters
    ----------
    grid : DataFrame or path
        The table of :func:`sinkhorn_em_repro.experiments.landscape.run_landscape_2d`.
    stationary : DataFrame or path
        The table of :func:`sinkhorn_em_repro.experiments.landscape.stationary_points_2d`.
    pdf_path : path
        Output PDF.
    png_path : path, optional
        Output PNG (default: next to the PDF).
    """
    grid = load_table(grid, outputs.LANDSCAPE_GRID_2D)
    stationary = load_table(stationary, outputs.LANDSCAPE_2D_STATIONARY)
    apply_style()
    grid = grid.sort_values(["theta1", "theta2"])
    axis = np.unique(grid["theta1"].to_numpy())
    m = axis.size
    floor = grid["nll"].min()
    fields = {loss: grid[loss].to_numpy().reshape(m, m).T - floor for loss in LOSS_ORDER}  # rows = theta2
    top = max(f.max() for f in fields.values())
    norm = colors.PowerNorm(gamma=0.35, vmin=0.0, vmax=top)
    levels = np.quantile(np.concatenate([f.ravel() for f in fields.values()]), np.linspace(0.02, 0.9, 12))
    alpha = float(grid["alpha"].iloc[0])
    theta_star = float(grid["theta_star"].iloc[0])

    fig, axes = plt.subplots(1, 2, figsize=(6.6, 3.3), sharex=True, sharey=True)
    for ax, loss in zip(axes, LOSS_ORDER):
        mesh = ax.pcolormesh(axis, axis, fields[loss], norm=norm, cmap="viridis", shading="auto", rasterized=True)
        ax.contour(axis, axis, fields[loss], levels=np.unique(levels), colors="white", linewidths=0.35, alpha=0.6)
        ax.plot(axis, -axis, color="white", ls="--", lw=0.8, alpha=0.8)
        points = stationary[stationary["loss"] == loss]
        for (kind, spurious), style in _STATIONARY_MARKERS.items():
            chosen = points[(points["kind"] == kind) & (points["spurious"].astype(bool) == spurious)]
            if len(chosen):
                ax.scatter(
                    chosen["theta1"], chosen["theta2"], zorder=4, **{k: v for k, v in style.items() if k != "label"}
                )
        n_spurious_minima = int(((points["kind"] == "minimum") & points["spurious"].astype(bool)).sum())
        plural = "um" if n_spurious_minima == 1 else "a"
        ax.set_title(f"{LOSS_LABELS[loss]}\n{n_spurious_minima} spurious local minim{plural}", color=LOSS_COLORS[loss])
        ax.set_xlabel(r"$\theta_1$ (weight $\alpha^*$)")
        ax.set_aspect("equal")
    axes[0].set_ylabel(r"$\theta_2$ (weight $1 - \alpha^*$)")
    cbar = fig.colorbar(mesh, ax=axes, shrink=0.85, pad=0.02)
    cbar.set_label(r"loss $-$ min NLL")
    present = {(k, bool(s)) for k, s in zip(stationary["kind"], stationary["spurious"].astype(bool))}
    handles = [
        Line2D(
            [],
            [],
            ls="none",
            marker=style["marker"],
            markersize=7 if style["marker"] == "*" else 5.5,
            markerfacecolor=style["facecolor"],
            markeredgecolor="black",
            label=style["label"],
        )
        for key, style in _STATIONARY_MARKERS.items()
        if key in present
    ]
    handles.append(Line2D([], [], color="0.3", ls="--", lw=0.8, label=r"symmetric model $\theta_2 = -\theta_1$"))
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.45, -0.1))
    fig.suptitle(
        rf"Two free means, known weights $(\alpha^*, 1-\alpha^*) = ({alpha:g}, {1 - alpha:g})$, "
        rf"truth $(\theta^*, -\theta^*) = ({theta_star:g}, {-theta_star:g})$",
        y=1.0,
    )
    save_figure(fig, pdf_path, png_path)
