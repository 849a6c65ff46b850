"""Figures of the spatial-domain application (DLPFC slices, mouse olfactory bulb); they read tables.

* :func:`plot_spatial_ari` - ARI of every seed per method and weight setting: one row of
  panels per slice, one panel per (features, covariance type).
* :func:`plot_spatial_map` - spots at their position coloured by the manual layer and by each
  method's highest-likelihood clustering (clusters renamed after the layer they overlap most).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from sinkhorn_em_repro.pipeline import read_table
from sinkhorn_em_repro.plotting.style import METHOD_LABELS, apply_style, method_color, save_figure

__all__ = ["plot_spatial_ari", "plot_spatial_map"]

_EXTRA_LABELS = {"mclust": "mclust EEE (our start)", "mclust_hc": "mclust EEE (own start)"}
_EXTRA_COLOURS = {"mclust": "#CC79A7", "mclust_hc": "#56B4E9"}
_METHODS = ("vEM", "oEM", "sEM", "sklearn", "mclust", "mclust_hc")
_WEIGHTS = ("oracle", "adjacent", "perturbed", "uniform", "none")
_PANELS = [(f, c) for f in ("pca", "smoothed", "pca+smoothed") for c in ("tied", "full")]


def _label(method: str) -> str:
    return _EXTRA_LABELS.get(method, METHOD_LABELS.get(method, method))


def _colour(method: str) -> str:
    return _EXTRA_COLOURS.get(method, method_color(method))


def _as_frame(table: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """The table to plot; a path is read with the column types declared for it (slice IDs stay text)."""
    return table if isinstance(table, pd.DataFrame) else read_table(table)


def plot_spatial_ari(per_seed: str | os.PathLike | pd.DataFrame, pdf_path, png_path=None) -> None:
    """Boxes of the ARI over seeds (dots = k-means++ seeds), grouped by weight setting, coloured by method.

    Fits from mclust's hierarchical start (table column ``start`` = ``hc``) are black-edged
    diamonds at their method's position.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = _as_frame(per_seed)
    table = table[np.isfinite(table["ari"])]
    starts = table["start"] if "start" in table.columns else pd.Series("kmeans++", index=table.index)
    hc_rows, table = table[starts == "hc"], table[starts != "hc"]
    apply_style()
    slices = list(dict.fromkeys(table["slice"]))
    panels = [p for p in _PANELS if ((table["features"] == p[0]) & (table["covariance_type"] == p[1])).any()]
    methods = [m for m in _METHODS if m in set(table["method"])]
    weights = [w for w in _WEIGHTS if w in set(table["weights"])]
    palette = {m: _colour(m) for m in methods}
    fig, axes = plt.subplots(
        len(slices),
        len(panels),
        figsize=(0.9 + 1.0 * len(weights) * len(panels), 2.2 * len(slices) + 0.4),
        sharey=True,
        squeeze=False,
    )
    for row, sample in enumerate(slices):
        for col, (features, covariance) in enumerate(panels):
            ax = axes[row, col]
            rows = table[
                (table["slice"] == sample) & (table["features"] == features) & (table["covariance_type"] == covariance)
            ]
            common = dict(data=rows, x="weights", y="ari", hue="method", order=weights, hue_order=methods, ax=ax)
            sns.boxplot(**common, palette=palette, showfliers=False, linewidth=0.6, boxprops={"alpha": 0.35})
            sns.stripplot(**common, palette=palette, dodge=True, size=2, jitter=0.15, legend=False, zorder=3)
            hc = hc_rows[
                (hc_rows["slice"] == sample)
                & (hc_rows["features"] == features)
                & (hc_rows["covariance_type"] == covariance)
                & hc_rows["weights"].isin(weights)
            ]
            if len(hc):
                sns.stripplot(
                    **{**common, "data": hc},
                    palette=palette,
                    dodge=True,
                    jitter=0,
                    size=5,
                    marker="D",
                    edgecolor="black",
                    linewidth=0.8,
                    legend=False,
                    zorder=4,
                )
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            ax.set_title(f"{sample}: {features}, {covariance}")
            ax.set_xlabel("")
            ax.set_ylabel("adjusted Rand index" if col == 0 else "")
            ax.grid(axis="y", color="0.9", lw=0.6)
            ax.set_axisbelow(True)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=palette[m], alpha=0.6, label=_label(m)) for m in methods]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path)


def _layer_colours(names: list[str]) -> dict[str, tuple]:
    import matplotlib

    palette = matplotlib.colormaps["tab10"].colors
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def plot_spatial_map(maps: str | os.PathLike | pd.DataFrame, pdf_path, png_path=None, *, point_size=None) -> None:
    """Spots coloured by layer: one row per slice, the annotation then one column per method.

    Each cluster has the colour of the layer it overlaps most (matched when the table was
    made), so agreement with the annotation reads as matching colours; unannotated spots
    are light grey in the annotation panel.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = _as_frame(maps)
    table = table.assign(label=table["label"].fillna("").astype(str))  # unannotated spots: empty, read as NaN
    apply_style()
    slices = list(dict.fromkeys(table["slice"]))
    columns = ["truth", *[m for m in _METHODS if m in set(table["method"])]]
    names = sorted(set(table.loc[table["label"] != "", "label"]))
    colours = {**_layer_colours(names), "": (0.85, 0.85, 0.85)}
    fig, axes = plt.subplots(
        len(slices), len(columns), figsize=(1.9 * len(columns), 2.0 * len(slices) + 0.3), squeeze=False
    )
    for row, sample in enumerate(slices):
        for col, method in enumerate(columns):
            ax = axes[row, col]
            spots = table[(table["slice"] == sample) & (table["method"] == method)]
            size = point_size if point_size is not None else max(1.0, 4000.0 / max(len(spots), 1))
            ax.scatter(
                spots["x"], spots["y"], c=[colours[v] for v in spots["label"]], s=size, linewidths=0, rasterized=True
            )
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if method == "truth":
                ax.set_title("manual layers" if row == 0 else "")
                ax.set_ylabel(sample)
            else:
                seed = int(spots["seed_index"].iloc[0]) if len(spots) else -1
                ari = spots["ari"].iloc[0] if len(spots) else np.nan
                ax.set_title(f"{_label(method)}\nARI {ari:.2f} (seed {seed})")
    handles = [Line2D([], [], marker="o", ls="", color=colours[n], label=n, markersize=5) for n in names]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(names), 7), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path)
