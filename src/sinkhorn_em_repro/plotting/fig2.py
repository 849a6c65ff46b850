"""Figure 2 of Mena et al. (2020), drawn from ``results/tables/fig2_runs.csv``.

Five panels, with the authors' aggregation and linear axes (``Fig2_NeuRIPS.ipynb``, cell 3):

(a) squared-W2 error after 4 iterations against alpha*: for each repetition the worst
    case over theta0, then the mean over repetitions;
(b) the same for the last iterate (iteration 200 for vEM and oEM, 25 for sEM);
(c) final theta from theta0 = -2, repetition 0, against alpha* (oEM as |theta|, since its
    label-swapped solution (-theta, 1 - w) is the same mixture);
(d), (e) mean over repetitions of the iterations needed to get within 1.5 times the
    final error (the start not counted; runs without such an iteration left out), against
    theta0, at alpha* = 0.78 and 0.9.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sinkhorn_em_repro.outputs import FIG2_RUNS
from sinkhorn_em_repro.plotting import style
from sinkhorn_em_repro.plotting.style import METHOD_LABELS, METHOD_ORDER, apply_style, method_color, save_figure

__all__ = ["mean_iterations_over_reps", "nearest_value", "plot_fig2", "worst_case_over_theta0"]

_MARKERS = {"vEM": "o", "oEM": "s", "sEM": "D"}


def nearest_value(values, target: float) -> float:
    """The element of ``values`` closest to ``target`` (grid values are floats)."""
    values = np.unique(np.asarray(values, dtype=float))
    return float(values[np.argmin(np.abs(values - target))])


def worst_case_over_theta0(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean over repetitions of the maximum over theta0 of ``column``, per (method, alpha)."""
    worst = runs.groupby(["method", "alpha", "rep"], as_index=False)[column].max()
    return worst.groupby(["method", "alpha"], as_index=False)[column].mean()


def mean_iterations_over_reps(runs: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Mean over repetitions of ``iters_to_converge`` per (method, theta0) at ``alpha`` (NaN runs left out)."""
    at_alpha = runs[np.isclose(runs["alpha"], alpha)]
    return at_alpha.groupby(["method", "theta0"], as_index=False)["iters_to_converge"].mean()


def _methods(runs: pd.DataFrame) -> list[str]:
    present = set(runs["method"])
    return [m for m in METHOD_ORDER if m in present]


def _last_iterations(last: pd.Series, methods) -> str:
    return ", ".join(f"{m} {int(last[m])}" for m in methods)


def _method_line(ax, method: str, x, y) -> None:
    """One method's curve in its shared colour, with its marker and label."""
    ax.plot(
        x,
        y,
        color=method_color(method),
        marker=_MARKERS.get(method, "o"),
        markersize=2.5,
        linewidth=1.2,
        label=METHOD_LABELS[method],
    )


def plot_fig2(
    runs,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike | None = None,
    *,
    panel_theta0: float = -2.0,
    panel_alphas=(0.78, 0.9),
    error_iteration: int = 4,
    converge_factor: float = 1.5,
) -> None:
    """Draw the five panels of Figure 2 from the runs table and save PDF + PNG.

    Parameters
    ----------
    runs : DataFrame or path
        ``results/tables/fig2_runs.csv``.
    pdf_path, png_path : path
        Outputs (PNG next to the PDF by default).
    panel_theta0 : float
        Initial mean of panel (c); the nearest theta0 of the table is used.
    panel_alphas : sequence of float
        alpha* of the last panels; the nearest alpha* of the table is used (and shown).
    error_iteration, converge_factor : int, float
        Only for the axis labels: the values the table was computed with.
    """
    runs = style.load_table(runs, FIG2_RUNS)
    apply_style()
    methods = _methods(runs)
    n_panels = 3 + len(panel_alphas)
    fig, axes = plt.subplots(1, n_panels, figsize=(2.75 * n_panels, 2.7), constrained_layout=True)

    last = runs.groupby("method")["n_iter"].max()
    for ax, column, title in (
        (axes[0], "error_iter4", f"(a) Error, {error_iteration} iterations"),
        (axes[1], "error_final", "(b) Error, last iterate\n(" + _last_iterations(last, methods) + ")"),
    ):
        summary = worst_case_over_theta0(runs, column)
        for method in methods:
            rows = summary[summary["method"] == method]
            _method_line(ax, method, rows["alpha"], rows[column])
        ax.set_xlabel(r"$\alpha^*$")
        ax.set_title(title)
    axes[0].set_ylabel(r"$W_2^2$ error (worst $\theta_0$, mean over reps)")

    ax = axes[2]
    theta0 = nearest_value(runs["theta0"], panel_theta0)
    first_rep = runs["rep"].min()
    for method in methods:
        rows = runs[(runs["method"] == method) & np.isclose(runs["theta0"], theta0) & (runs["rep"] == first_rep)]
        rows = rows.sort_values("alpha")
        final = rows["theta_final"].abs() if method == "oEM" else rows["theta_final"]
        _method_line(ax, method, rows["alpha"], final)
    ax.set_xlabel(r"$\alpha^*$")
    ax.set_ylabel(r"final $\theta$ (oEM: $|\theta|$)")
    ax.set_title(rf"(c) Final iterates, $\theta_0 = {theta0:g}$, rep {first_rep}")

    for index, (ax, wanted) in enumerate(zip(axes[3:], panel_alphas)):
        alpha = nearest_value(runs["alpha"], wanted)
        mean_iters = mean_iterations_over_reps(runs, alpha)
        for method in methods:
            rows = mean_iters[mean_iters["method"] == method]
            _method_line(ax, method, rows["theta0"], rows["iters_to_converge"])
        ax.set_xlabel(r"$\theta_0$")
        ax.set_ylabel(f"iterations to {converge_factor:g}× final error")
        ax.set_title(f"({chr(ord('d') + index)}) Speed of conv., " + rf"$\alpha^* = {alpha:.2f}$")

    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), frameon=False)
    save_figure(fig, pdf_path, png_path)
