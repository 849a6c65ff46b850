"""Figures of the C. elegans family; they read the tables written by the pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sinkhorn_em_repro.labels import AUTHORS, PROJECT
from sinkhorn_em_repro.outputs import CELEGANS_PER_ITERATION, CELEGANS_SEGMENTATION
from sinkhorn_em_repro.plotting import style
from sinkhorn_em_repro.plotting.style import METHOD_LABELS, METHOD_ORDER, apply_style, method_color, save_figure

__all__ = ["INIT_STYLES", "plot_celegans_metrics", "plot_celegans_segmentation"]

#: Suffix of the column of the authors' protocol in the metrics figure.
AUTHORS_SUFFIX = " (authors)"
#: Line style per initialisation.
INIT_STYLES = {"atlas": "-", "random": "--"}
INIT_LABELS = {"atlas": "atlas start", "random": "random-voxel start"}
_METRIC_LABELS = {
    "position_error": "mean position error (µm)",
    "train_loglik": "train log-lik. per voxel",
    "test_loglik": "test log-lik. per voxel",
}


def _metric_label(metric: str) -> str:
    if metric.startswith("accuracy_r"):
        return f"accuracy within {metric[len('accuracy_r') :]} µm"
    return _METRIC_LABELS.get(metric, metric)


def _column_title(row: pd.Series) -> str:
    if row["dataset"].endswith(AUTHORS_SUFFIX):
        name = row["dataset"][: -len(AUTHORS_SUFFIX)]
        return f"{name}, authors' protocol\nidentity metrics, K={row['n_neurons']}, N={row['n_voxels']}"
    if row["n_datasets"] > 1:
        return f"{row['dataset']}\n{row['n_datasets']} worms, mean K={row['n_neurons']}, N≈{row['n_voxels']}"
    return f"{row['dataset']}\nK={row['n_neurons']}, N={row['n_voxels']}"


def _plotted_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows drawn by the metrics figure: the authors' protocol as a column of its own.

    Its identity metrics (component k against neuron k, its headline numbers) take the rows of
    the matched ones, and its column is named ``<dataset>, authors' protocol``.
    """
    protocol = table["protocol"] if "protocol" in table else pd.Series(PROJECT, index=table.index)
    identity = table["metric"].str.startswith("identity_")
    ours = table[(protocol != AUTHORS) & ~identity]
    theirs = table[protocol == AUTHORS]
    replaced = set(theirs.loc[identity, "metric"].str.removeprefix("identity_"))
    theirs = theirs[~theirs["metric"].isin(replaced)]
    theirs = theirs.assign(
        metric=theirs["metric"].str.removeprefix("identity_"), dataset=theirs["dataset"] + AUTHORS_SUFFIX
    )
    return pd.concat([ours, theirs], ignore_index=True)


def _shown_datasets(table: pd.DataFrame) -> pd.DataFrame:
    """Datasets drawn as columns: those not pooled into another one (and the pools)."""
    pool = table["pool"].fillna("") if "pool" in table else pd.Series("", index=table.index)
    shown = table[pool == ""].drop_duplicates("dataset")
    kind_rank = np.where(shown["dataset"].str.startswith("atlas"), 0, np.where(shown["n_datasets"] > 1, 1, 2))
    return shown.assign(_rank=kind_rank).sort_values(["_rank", "n_neurons"], kind="stable")


def _focus_after_start(ax, rows: pd.DataFrame) -> None:
    """y-range of the means after the first iteration: the start would flatten the curves."""
    later = rows.loc[rows["iteration"] >= 1, "mean"]
    if later.empty:
        return
    low, high = float(later.min()), float(later.max())
    margin = 0.15 * (high - low) if high > low else 0.5 * max(abs(high), 1.0)
    ax.set_ylim(low - margin, high + margin)


def plot_celegans_metrics(per_iteration, pdf_path, png_path=None):
    """Metrics vs iteration (top rows) and accuracy vs wall time (bottom row).

    One column per dataset (real worms pooled per source and region when the table has
    pooled rows; the authors' protocol in a column of its own, with its identity metrics in
    the accuracy and position-error rows), one colour per method, solid lines for the atlas
    start and dashed for the random-voxel start; bands are the 95% intervals of the table.

    Parameters
    ----------
    per_iteration : str, path or DataFrame
        ``results/celegans/celegans_per_iteration.csv`` (see
        :func:`sinkhorn_em_repro.experiments.celegans.summarise_celegans`).
    """
    import matplotlib.pyplot as plt

    table = style.load_table(per_iteration, CELEGANS_PER_ITERATION)
    if table.empty:
        raise ValueError("the per-iteration table is empty: nothing to plot")
    table = _plotted_rows(table)
    apply_style()
    columns = _shown_datasets(table)
    metrics = [m for m in pd.unique(table["metric"]) if m != "train_loglik"]
    accuracies = [m for m in metrics if m.startswith("accuracy_r")]
    timed = accuracies[-1] if accuracies else metrics[0]
    n_rows, n_cols = len(metrics) + 1, len(columns)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(2.6 * n_cols + 0.6, 1.75 * n_rows + 0.8), squeeze=False, constrained_layout=True
    )
    methods = [m for m in METHOD_ORDER if m in set(table["method"])]
    inits = [i for i in INIT_STYLES if i in set(table["init"])]
    for col, (_, info) in enumerate(columns.iterrows()):
        data = table[table["dataset"] == info["dataset"]]
        for row, metric in enumerate([*metrics, timed]):
            ax = axes[row, col]
            versus_time = row == n_rows - 1
            for method in methods:
                for init in inits:
                    curve = data[(data["metric"] == metric) & (data["method"] == method) & (data["init"] == init)]
                    if curve.empty:
                        continue
                    x = curve["mean_wall_seconds"] if versus_time else curve["iteration"]
                    line = {"color": method_color(method), "linestyle": INIT_STYLES[init]}
                    ax.plot(x, curve["mean"], lw=1.3, **line)
                    if not versus_time:  # bands along a time axis that varies by trial mislead
                        ax.fill_between(x, curve["ci_low"], curve["ci_high"], color=line["color"], alpha=0.12, lw=0)
            if not metric.startswith("accuracy_r"):
                _focus_after_start(ax, data[data["metric"] == metric])
            if versus_time:
                ax.set_xscale("log")
                ax.set_xlabel("mean fit time (s)")
            elif row == n_rows - 2:
                ax.set_xlabel("iteration")
            if metric.startswith("accuracy_r"):
                ax.set_ylim(-0.03, 1.03)
            if col == 0:
                ax.set_ylabel(_metric_label(metric))
            if row == 0:
                ax.set_title(_column_title(info))
    handles = [plt.Line2D([], [], color=method_color(m), lw=1.5, label=METHOD_LABELS.get(m, m)) for m in methods] + [
        plt.Line2D([], [], color="0.3", lw=1.2, linestyle=INIT_STYLES[i], label=INIT_LABELS[i]) for i in inits
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), frameon=False)
    save_figure(fig, pdf_path, png_path)


def _palette(n: int) -> np.ndarray:
    """``n`` distinct colours; neighbours in tab20 are light/dark pairs, so take evens first."""
    import matplotlib as mpl

    base = []
    for name in ("tab20", "tab20b", "tab20c"):
        colors = mpl.colormaps[name].colors
        base.extend(colors[0::2] + colors[1::2])
    base = np.array(base)
    return base[np.arange(n) % len(base)]


def _principal_plane(points: np.ndarray) -> np.ndarray:
    """The two axes of largest spread of ``points`` (rows of a (2, 3) matrix)."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    # Fix the signs so that the picture does not flip between runs or platforms.
    signs = np.sign(vt[:, np.argmax(np.abs(vt), axis=1)].diagonal())
    return vt[:2] * signs[:2, None]


def plot_celegans_segmentation(segmentation, pdf_path, png_path=None):
    """Voxels of one worm coloured by neuron: the truth, then each method and start.

    Voxel positions (centred) are projected on the plane of their two largest principal
    axes; rows are methods, columns starts, the top panel the truth.
    Each panel title gives the fraction of voxels assigned to their true neuron.

    Parameters
    ----------
    segmentation : str, path or DataFrame
        ``results/celegans/segmentation.csv`` (see
        :func:`sinkhorn_em_repro.experiments.celegans.segmentation_map`).
    """
    import matplotlib.pyplot as plt

    table = style.load_table(segmentation, CELEGANS_SEGMENTATION)
    if table.empty:
        raise ValueError("the segmentation table is empty: nothing to plot")
    apply_style()
    methods = [m for m in METHOD_ORDER if m in set(table["method"])]
    inits = [i for i in INIT_STYLES if i in set(table["init"])]
    first = table[(table["init"] == inits[0]) & (table["method"] == methods[0])]
    n_neurons = int(table["truth"].max()) + 1
    colors = _palette(n_neurons)
    positions = first[["x", "y", "z"]].to_numpy()
    axes_xyz, centre = _principal_plane(positions), positions.mean(axis=0)
    project = lambda frame: (frame[["x", "y", "z"]].to_numpy() - centre) @ axes_xyz.T  # noqa: E731

    xy_all = project(first)
    extent = np.ptp(xy_all, axis=0)
    panel_width = 3.4
    panel_height = float(np.clip(panel_width * extent[1] / max(extent[0], 1e-9), 0.8, panel_width)) + 0.6
    fig = plt.figure(
        figsize=(panel_width * len(inits) + 0.4, panel_height * (len(methods) + 1) + 0.4), constrained_layout=True
    )
    grid = fig.add_gridspec(len(methods) + 1, len(inits))
    truth_ax = fig.add_subplot(grid[0, :])

    low, high = xy_all.min(axis=0) - 0.04 * extent, xy_all.max(axis=0) + 0.04 * extent

    def draw(ax, frame, labels, title):
        xy = project(frame)
        ax.scatter(xy[:, 0], xy[:, 1], c=colors[labels], s=3, lw=0, rasterized=True)
        ax.set_title(title)
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=7)

    draw(
        truth_ax,
        first,
        first["truth"].to_numpy(),
        f"truth: {first['dataset'].iloc[0]}, {n_neurons} neurons, trial {first['trial'].iloc[0]}",
    )
    truth_ax.set_ylabel("axis 2 (µm)")
    for col, init in enumerate(inits):
        for row, method in enumerate(methods, start=1):
            ax = fig.add_subplot(grid[row, col])
            frame = table[(table["init"] == init) & (table["method"] == method)]
            correct = float(np.mean(frame["label"] == frame["truth"]))
            title = f"{method}, {INIT_LABELS[init]}: {100 * correct:.0f}% voxels correct"
            draw(ax, frame, frame["label"].to_numpy(), title)
            if col == 0:
                ax.set_ylabel("axis 2 (µm)")
            if row == len(methods):
                ax.set_xlabel("axis 1 (µm)")
    save_figure(fig, pdf_path, png_path)
