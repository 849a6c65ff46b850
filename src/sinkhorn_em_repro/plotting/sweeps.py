"""Figures of the sweeps family: success over initialisations, epsilon sweep and annealing.

Both functions read the aggregated tables (``results/tables/init_sweep.csv`` and
``results/tables/epsilon_sweep.csv``) and never refit anything.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.lines import Line2D

from sinkhorn_em_repro.intervals import wilson_interval
from sinkhorn_em_repro.labels import INIT_SCHEMES
from sinkhorn_em_repro.outputs import EPSILON_SWEEP, INIT_SWEEP
from sinkhorn_em_repro.plotting import style
from sinkhorn_em_repro.plotting.style import METHOD_LABELS, METHOD_ORDER, apply_style, method_color, save_figure

__all__ = ["plot_epsilon", "plot_init_success"]

SCHEME_LABELS = {
    "random_from_data": "random data points",
    "k-means++": "k-means++",
    "uniform_box": "uniform in bounding box",
    "truth": "true parameters",
}
_MARKERS = {"vEM": "o", "oEM": "s", "sEM": "D"}
_EPSILON_LABELS = {"vEM": "tempered EM", "oEM": "tempered oEM", "sEM": "Sinkhorn-EM"}


def _methods(table: pd.DataFrame) -> list[str]:
    present = set(table["method"])
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def _dodge(methods: list[str], width: float) -> dict[str, float]:
    """Horizontal offsets so that the error bars of different methods do not overlap."""
    centre = (len(methods) - 1) / 2
    return {m: (i - centre) * width for i, m in enumerate(methods)}


def _error_bars(ax, x, y, low, high, method, label, **kwargs):
    y, low, high = (np.asarray(v, dtype=float) for v in (y, low, high))
    lengths = np.vstack([y - low, high - y])
    # A Wilson bound at a fraction of 0 or 1 can miss the point by rounding (1e-17);
    # anything larger would be a wrong interval, not rounding.
    if np.any(lengths < -1e-9):
        raise ValueError(f"interval does not contain its point: {lengths.min():.3g} below it")
    ax.errorbar(
        x,
        y,
        yerr=np.maximum(lengths, 0.0),
        color=method_color(method),
        marker=_MARKERS.get(method, "o"),
        markersize=3.5,
        linewidth=1.2,
        capsize=2,
        elinewidth=0.8,
        label=label,
        **kwargs,
    )


def _save_with_note(fig, note: str, pdf_path, png_path) -> None:
    """Write the figure with ``note`` in small grey type under its bottom-right corner."""
    fig.text(0.995, 0.0, note, ha="right", va="top", fontsize=7, color="#555555")
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path)


def plot_init_success(
    table: pd.DataFrame | str | os.PathLike, pdf_path: str | os.PathLike, png_path: str | os.PathLike | None = None
) -> None:
    """Success fraction against separation: rows = initialisation schemes, columns = (K, d).

    Points are success fractions and bars their Wilson 95% intervals; lines join the
    separations of one method. Methods are dodged horizontally for legibility. A table with
    both pairings of weights to starts is drawn for the "as drawn" pairing (the papers'
    sense), named in the note; the other pairing's numbers are in the table.
    """
    table = style.load_table(table, INIT_SWEEP)
    pairing_note = ""
    if "pairing" in table.columns and table["pairing"].nunique() > 1:
        shown = "as_drawn" if "as_drawn" in set(table["pairing"]) else sorted(set(table["pairing"]))[0]
        table = table[table["pairing"] == shown]
        pairing_note = f"; weights paired with starts {shown.replace('_', ' ')} (other pairing: init_sweep.csv)"
    apply_style()
    panels = table[["K", "weights", "d"]].drop_duplicates().sort_values(["K", "weights", "d"]).itertuples(index=False)
    panels = list(panels)
    schemes = [s for s in INIT_SCHEMES if s in set(table["init"])]
    methods = _methods(table)
    separations = np.sort(table["separation"].unique())
    step = np.min(np.diff(separations)) if len(separations) > 1 else 1.0
    offsets = _dodge(methods, 0.06 * step)

    fig, axes = plt.subplots(
        len(schemes),
        len(panels),
        sharex=True,
        sharey=True,
        squeeze=False,
        figsize=(1.95 * len(panels) + 0.6, 1.45 * len(schemes) + 0.7),
    )
    for row, scheme in enumerate(schemes):
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            cell = table[
                (table["init"] == scheme)
                & (table["K"] == panel.K)
                & (table["weights"] == panel.weights)
                & (table["d"] == panel.d)
            ]
            for method in methods:
                line = cell[cell["method"] == method].sort_values("separation")
                if line.empty:
                    continue
                _error_bars(
                    ax,
                    line["separation"] + offsets[method],
                    line["success"],
                    line["ci_low"],
                    line["ci_high"],
                    method,
                    METHOD_LABELS.get(method, method),
                )
            # Grey band: the trivial collapsed fit would pass the success rule here, so a
            # high success fraction says nothing about finding the global optimum.
            blind = cell.loc[cell["collapsed_success_fraction"] > 0, "separation"].unique()
            for separation in blind:
                ax.axvspan(separation - 0.4 * step, separation + 0.4 * step, color="#dddddd", zorder=0, linewidth=0)
            ax.set_ylim(-0.04, 1.04)
            ax.set_xticks(separations)
            ax.grid(axis="y", linewidth=0.4, alpha=0.4)
            if row == 0:
                short_weights = "/".join(f"{float(w):.2g}" for w in panel.weights.split("/"))
                ax.set_title(f"K = {panel.K}, d = {panel.d}\n" r"$\alpha$ = " f"{short_weights}", fontsize=7.5)
            if col == 0:
                ax.set_ylabel(f"{SCHEME_LABELS.get(scheme, scheme)}\nsuccess fraction")
            if row == len(schemes) - 1:
                ax.set_xlabel(r"separation ($\sigma$)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(methods), frameon=False)
    n_runs = table["n_runs"]
    runs_text = f"{n_runs.min()}" if n_runs.min() == n_runs.max() else f"{n_runs.min()}-{n_runs.max()}"
    _save_with_note(
        fig,
        f"{runs_text} runs per point; bars: Wilson 95% intervals; grey: the collapsed fit would count as a success"
        + pairing_note,
        pdf_path,
        png_path,
    )


def _pooled(table: pd.DataFrame, by: list[str], count: str = "n_success") -> pd.DataFrame:
    """Success (``count`` successes) pooled over settings, with its Wilson interval."""
    pooled = table.groupby(by, sort=True).agg(n_runs=("n_runs", "sum"), n_success=(count, "sum"))
    low, high = wilson_interval(pooled["n_success"].to_numpy(), pooled["n_runs"].to_numpy())
    return pooled.assign(success=pooled["n_success"] / pooled["n_runs"], ci_low=low, ci_high=high).reset_index()


def _relative_to_unit_epsilon(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` divided by its value at constant epsilon = 1 (same method and setting)."""
    setting = ["K", "d", "weights", "separation", "init"]
    unit = table[(table["schedule"] == "constant") & (table["eps"] == 1.0)]
    merged = table.merge(unit[["method", *setting, column]], on=["method", *setting], suffixes=("", "_unit"))
    return merged.assign(ratio=merged[column] / merged[f"{column}_unit"])


def _geometric_mean(values: pd.Series) -> float:
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.exp(np.log(values).mean())) if len(values) else np.nan


def plot_epsilon(
    table: pd.DataFrame | str | os.PathLike, pdf_path: str | os.PathLike, png_path: str | os.PathLike | None = None
) -> None:
    """Epsilon sweep (top row) and annealing schedules (bottom row), pooled over settings.

    Top: success fraction (all runs pooled over the settings where the collapsed fit fails
    the success rule, Wilson 95% interval; filled:
    ``success``, reaching the epsilon-1 optimum; open: ``success_own``), bias of
    the fit started at the truth (mean over settings of ``mean_bias``), and iterations
    (mean over settings of the median), against a constant epsilon. Bottom: the same
    success fraction, the final error of successful runs relative to constant epsilon = 1
    (geometric mean over settings of the ratio of medians), and iterations, for constant
    epsilon = 1 and each annealing schedule.
    """
    table = style.load_table(table, EPSILON_SWEEP)
    apply_style()
    methods = _methods(table)
    constant = table[table["schedule"] == "constant"]
    annealed = table[table["schedule"] != "constant"]
    # Success is pooled over the settings where the trivial collapsed fit fails the rule;
    # elsewhere a collapsed run (the fate of epsilon > 1) would count as a success.
    informative = table[table["collapsed_success_fraction"] == 0]
    if informative.empty:
        informative = table
    fig, axes = plt.subplots(2, 3, figsize=(7.5, 4.8))

    # Top row: constant epsilon.
    informative_constant = informative[informative["schedule"] == "constant"]
    success = _pooled(informative_constant, ["method", "eps"])
    success_own = _pooled(informative_constant, ["method", "eps"], count="n_success_own")
    per_eps = (
        constant.groupby(["method", "eps"], sort=True)
        .agg(bias=("mean_bias", "mean"), iterations=("median_iterations", "mean"))
        .reset_index()
    )
    eps_values = np.sort(constant["eps"].unique())
    factor = {m: f for m, f in zip(methods, np.exp(np.linspace(-0.06, 0.06, len(methods))))}
    for method in methods:
        label = _EPSILON_LABELS.get(method, method)
        line = success[success["method"] == method]
        _error_bars(
            axes[0, 0], line["eps"] * factor[method], line["success"], line["ci_low"], line["ci_high"], method, label
        )
        line = success_own[success_own["method"] == method]
        _error_bars(
            axes[0, 0],
            line["eps"] / factor[method],
            line["success"],
            line["ci_low"],
            line["ci_high"],
            method,
            None,
            linestyle="--",
            markerfacecolor="white",
        )
        line = per_eps[per_eps["method"] == method]
        for ax, column in ((axes[0, 1], "bias"), (axes[0, 2], "iterations")):
            ax.plot(
                line["eps"],
                line[column],
                color=method_color(method),
                marker=_MARKERS.get(method, "o"),
                markersize=3.5,
                linewidth=1.2,
                label=label,
            )
    axes[0, 0].set_ylabel("success fraction")
    axes[0, 1].set_ylabel("parameter error of the fit\nstarted at the truth")
    axes[0, 2].set_ylabel("iterations (median)")
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_xticks(eps_values, [f"{e:g}" for e in eps_values])
        ax.minorticks_off()
        ax.axvline(1.0, color="#999999", linewidth=0.6, linestyle=":")
        ax.set_xlabel(r"$\varepsilon$ (constant)")
    axes[0, 0].set_ylim(-0.04, 1.04)
    axes[0, 1].set_yscale("log")  # the bias spans decades between small and large epsilon
    axes[0, 1].yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[0, 1].yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axes[0, 1].yaxis.set_minor_formatter(ticker.NullFormatter())

    # Bottom row: annealing to epsilon = 1 against constant epsilon = 1.
    unit = constant[constant["eps"] == 1.0]
    comparison = pd.concat([unit, annealed])
    schedules = ["constant"] + sorted(
        annealed["schedule"].unique(),
        key=lambda s: (
            annealed.loc[annealed["schedule"] == s, "eps0"].iloc[0],
            annealed.loc[annealed["schedule"] == s, "decay"].iloc[0],
        ),
    )
    positions = {s: i for i, s in enumerate(schedules)}
    offsets = _dodge(methods, 0.12)
    success = _pooled(
        informative[(informative["schedule"] != "constant") | (informative["eps"] == 1.0)], ["method", "schedule"]
    )
    accuracy = (
        _relative_to_unit_epsilon(comparison, "median_error_success")
        .groupby(["method", "schedule"])
        .agg(ratio=("ratio", _geometric_mean))
        .reset_index()
    )
    iterations = comparison.groupby(["method", "schedule"]).agg(iterations=("median_iterations", "mean")).reset_index()
    for method in methods:
        line = success[success["method"] == method]
        x = line["schedule"].map(positions) + offsets[method]
        _error_bars(
            axes[1, 0],
            x,
            line["success"],
            line["ci_low"],
            line["ci_high"],
            method,
            _EPSILON_LABELS.get(method, method),
            linestyle="none",
        )
        for ax, frame, column in ((axes[1, 1], accuracy, "ratio"), (axes[1, 2], iterations, "iterations")):
            line = frame[frame["method"] == method]
            ax.plot(
                line["schedule"].map(positions) + offsets[method],
                line[column],
                linestyle="none",
                color=method_color(method),
                marker=_MARKERS.get(method, "o"),
                markersize=4,
            )
    tick_labels = [r"$\varepsilon$ = 1"] + [
        f"{annealed.loc[annealed['schedule'] == s, 'eps0'].iloc[0]:g}"
        r"$\to$1"
        "\n"
        r"$\rho$ "
        f"{annealed.loc[annealed['schedule'] == s, 'decay'].iloc[0]:g}"
        for s in schedules[1:]
    ]
    for ax in axes[1]:
        ax.set_xticks(range(len(schedules)), tick_labels, fontsize=7)
        ax.set_xlim(-0.5, len(schedules) - 0.5)
        ax.set_xlabel(r"annealing $\varepsilon_0 \rho^t \to 1$")
    axes[1, 0].set_ylim(-0.04, 1.04)
    axes[1, 0].set_ylabel("success fraction")
    axes[1, 1].axhline(1.0, color="#999999", linewidth=0.6, linestyle=":")
    axes[1, 1].set_ylabel("final error of successes\n" r"relative to $\varepsilon$ = 1")
    axes[1, 2].set_ylabel("iterations (median)")
    for ax, letter in zip(axes.flat, "abcdef"):
        ax.set_title(f"({letter})", loc="left", fontsize=8)
        ax.grid(axis="y", linewidth=0.4, alpha=0.4)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    grey = "#555555"
    handles += [
        Line2D([], [], color=grey, marker="o", markersize=3.5),
        Line2D([], [], color=grey, marker="o", markersize=3.5, linestyle="--", markerfacecolor="white"),
    ]
    labels += [
        r"success: error as at $\varepsilon$ = 1 from the truth",
        r"own optimum: error as at this $\varepsilon$ from the truth",
    ]
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    n_settings = len(table[["K", "d", "weights", "separation"]].drop_duplicates())
    n_informative = len(informative[["K", "d", "weights", "separation"]].drop_duplicates())
    _save_with_note(
        fig,
        f"success (a, d): {n_informative} of {n_settings} settings (those where the "
        f"collapsed fit fails the rule); (b, c, e, f): all {n_settings}",
        pdf_path,
        png_path,
    )
