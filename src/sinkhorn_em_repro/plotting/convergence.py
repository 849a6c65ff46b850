"""The convergence-rate figure, drawn from the tables of the convergence family.

Top row, one panel per theta*: log parameter error against iteration in population at
one alpha* (colour = method, line style = initialisation theta0 / theta*). Bottom row:
(overspecified) theta* = 0 on log-log axes, where balanced weights give sublinear
convergence; (speed ratio) iterations per decade of error of sEM / of vEM
(-1/log10(rate), the scale of claim 4 of the report) against alpha* for every setting where
both converge to the truth; (general K) distance of every iterate to the run's limit for
the K-component fits, with each method's median rate in the legend.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sinkhorn_em_repro import outputs
from sinkhorn_em_repro.plotting import style
from sinkhorn_em_repro.plotting.style import METHOD_LABELS, METHOD_ORDER, apply_style, method_color, save_figure
from sinkhorn_em_repro.rates import iterations_per_decade

__all__ = ["decade_ratios", "plot_convergence"]

_LINESTYLES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v"]
# Errors at or below this are rounding noise: the curves stop there.
_ERROR_FLOOR = 1e-15


def _methods(table: pd.DataFrame) -> list[str]:
    present = set(table["method"])
    return [m for m in METHOD_ORDER if m in present]


def _visible(run: pd.DataFrame, column: str) -> pd.DataFrame:
    return run[run[column] > _ERROR_FLOOR]


def _factor_label(factor: float) -> str:
    if np.isclose(factor, 0.5):
        return r"$\theta_0 = \theta^*/2$"
    if np.isclose(factor, 1.0):
        return r"$\theta_0 = \theta^*$"
    if np.isclose(factor, -1.0):
        return r"$\theta_0 = -\theta^*$"
    return rf"$\theta_0 = {factor:g}\,\theta^*$"


def _error_panels(axes, trajectories: pd.DataFrame, display_alpha: float):
    correct = trajectories[trajectories["theta_star"] > 0]
    alphas = np.unique(correct["alpha"])
    alpha = float(alphas[np.argmin(np.abs(alphas - display_alpha))])
    factors = sorted(np.unique(np.round(correct["theta0"] / correct["theta_star"], 12)), reverse=True)
    style_of = {f: _LINESTYLES[i % len(_LINESTYLES)] for i, f in enumerate(factors)}
    for ax, theta_star in zip(axes, sorted(np.unique(correct["theta_star"]))):
        setting = correct[np.isclose(correct["theta_star"], theta_star) & np.isclose(correct["alpha"], alpha)]
        longest_useful = 5
        for (method, theta0), run in setting.groupby(["method", "theta0"]):
            run = _visible(run.sort_values("iteration"), "error")
            if run.empty:
                continue
            factor = float(np.round(theta0 / theta_star, 12))
            ax.plot(
                run["iteration"], run["error"], color=method_color(method), linestyle=style_of[factor], linewidth=1.2
            )
            if run["error"].iloc[-1] < 1e-6:
                longest_useful = max(longest_useful, int(run["iteration"].iloc[-1]))
        ax.set_yscale("log")
        ax.set_xlim(0, int(1.15 * longest_useful) + 1)
        ax.set_xlabel("iteration $t$")
        ax.set_ylabel(r"parameter error $e_t$")
        ax.set_title(rf"$\theta^* = {theta_star:g}$, $\alpha^* = {alpha:g}$ (population)")
    return [Line2D([], [], color="0.3", linestyle=style_of[f], label=_factor_label(f)) for f in factors]


def _overspecified_panel(ax, trajectories: pd.DataFrame):
    over = trajectories[trajectories["theta_star"] == 0]
    alphas = sorted(np.unique(over["alpha"]))
    style_of = {a: _LINESTYLES[i % len(_LINESTYLES)] for i, a in enumerate(alphas)}
    for (method, alpha, _theta0), run in over.groupby(["method", "alpha", "theta0"]):
        run = _visible(run.sort_values("iteration"), "error")
        ax.plot(
            run["iteration"] + 1,
            run["error"],
            color=method_color(method),
            linestyle=style_of[alpha],
            linewidth=1.0,
            alpha=0.8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1 + iteration $t$")
    ax.set_ylabel(r"$|\theta_t|$")
    ax.set_title(r"overspecified: truth $N(0, 1)$, $\theta^* = 0$")
    handles = [Line2D([], [], color="0.3", linestyle=style_of[a], label=rf"$\alpha = {a:g}$") for a in alphas]
    ax.legend(handles=handles, loc="lower left", frameon=False)


def decade_ratios(rates: pd.DataFrame) -> pd.DataFrame:
    """Per setting where sEM and vEM both reach the target error: q = iterations per decade of sEM / of vEM."""
    setting = ["theta_star", "alpha", "theta0"]
    linear = rates[rates["iterations_to_1e-6"].notna() & (rates["rate"] < 1)]
    per_decade = linear.assign(per_decade=iterations_per_decade(linear["rate"])).pivot_table(
        index=setting, columns="method", values="per_decade", aggfunc="first"
    )
    if not {"sEM", "vEM"} <= set(per_decade.columns):
        return pd.DataFrame(columns=[*setting, "ratio"])
    ratio = (per_decade["sEM"] / per_decade["vEM"]).dropna().rename("ratio")
    return ratio.reset_index()


def _ratio_panel(ax, rates: pd.DataFrame):
    ratios = decade_ratios(rates[rates["theta_star"] > 0])
    theta_stars = sorted(np.unique(ratios["theta_star"]))
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(theta_stars), 1)))
    for colour, marker, theta_star in zip(colours, _MARKERS, theta_stars):
        rows = ratios[np.isclose(ratios["theta_star"], theta_star)]
        ax.scatter(
            rows["alpha"],
            rows["ratio"],
            color=colour,
            marker=marker,
            s=14,
            alpha=0.8,
            label=rf"$\theta^* = {theta_star:g}$",
        )
        median = rows.groupby("alpha")["ratio"].median()
        ax.plot(median.index, median.to_numpy(), color=colour, linewidth=1.0)
    ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlabel(r"true weight $\alpha^*$")
    ax.set_ylabel("iterations per decade, sEM / EM")
    ax.set_title("speed ratio (< 1: Sinkhorn-EM faster)")
    ax.legend(loc="lower left", frameon=False)


def _general_k_panel(ax, general_k: pd.DataFrame, general_k_rates: pd.DataFrame, methods):
    median_rate = general_k_rates.groupby("method")["rate"].median()
    for (method, _dataset), run in general_k.groupby(["method", "dataset"]):
        run = _visible(run.sort_values("iteration"), "error_to_limit")
        ax.plot(run["iteration"], run["error_to_limit"], color=method_color(method), linewidth=1.0, alpha=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("iteration $t$")
    ax.set_ylabel("distance to the run's limit")
    k, d = int(general_k["n_components"].iloc[0]), int(general_k["dim"].iloc[0])
    ax.set_title(f"K = {k}, d = {d}, unequal weights (sample)")
    handles = [
        Line2D([], [], color=method_color(m), label=f"{m}: rate {median_rate.get(m, np.nan):.3f}") for m in methods
    ]
    ax.legend(handles=handles, loc="upper right", frameon=False)


def plot_convergence(
    trajectories,
    rates,
    general_k,
    general_k_rates,
    pdf_path: str | os.PathLike,
    png_path: str | os.PathLike | None = None,
    *,
    display_alpha: float = 0.7,
) -> None:
    """Draw the convergence-rate figure and save it as PDF + PNG.

    Parameters
    ----------
    trajectories : DataFrame or path
        Symmetric population iterates (``results/convergence/symmetric_trajectories.csv``).
    rates : DataFrame or path
        ``results/tables/convergence_rates.csv``.
    general_k, general_k_rates : DataFrame or path
        ``results/tables/convergence_general_k.csv`` and ``..._rates.csv``.
    display_alpha : float
        alpha* of the top-row panels (nearest alpha* present).
    """
    trajectories = style.load_table(trajectories, outputs.CONVERGENCE_TRAJECTORIES)
    rates = style.load_table(rates, outputs.CONVERGENCE_RATES)
    general_k = style.load_table(general_k, outputs.CONVERGENCE_GENERAL_K)
    general_k_rates = style.load_table(general_k_rates, outputs.CONVERGENCE_GENERAL_K_RATES)
    apply_style()
    methods = _methods(trajectories)
    n_top = max(int(np.unique(trajectories.loc[trajectories["theta_star"] > 0, "theta_star"]).size), 1)
    n_cols = max(n_top, 3)
    fig, axes = plt.subplots(2, n_cols, figsize=(3.2 * n_cols, 5.6), constrained_layout=True, squeeze=False)
    for ax in axes[0, n_top:]:
        ax.set_visible(False)
    style_handles = _error_panels(axes[0, :n_top], trajectories, display_alpha)
    _overspecified_panel(axes[1, 0], trajectories)
    _ratio_panel(axes[1, 1], rates)
    _general_k_panel(axes[1, 2], general_k, general_k_rates, methods)
    for ax in axes[1, 3:]:
        ax.set_visible(False)
    letters = iter("abcdefghijkl")
    for ax in axes.flat:
        if ax.get_visible():
            ax.set_title(f"({next(letters)}) " + ax.get_title())
    method_handles = [Line2D([], [], color=method_color(m), label=METHOD_LABELS[m]) for m in methods]
    fig.legend(
        handles=method_handles + style_handles,
        loc="outside upper center",
        ncol=len(method_handles) + len(style_handles),
        frameon=False,
    )
    save_figure(fig, pdf_path, png_path)
