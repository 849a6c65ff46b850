"""Figures of the osmFISH application; they read the tables written by the pipeline.

* :func:`plot_osmfish_ari` - ARI of every seed, per method and weight setting (seaborn), one
  panel per (target, feature set).
* :func:`plot_osmfish_map` - cells at their spatial position coloured by the true
  region and by each method's highest-likelihood clustering.
"""

from __future__ import annotations

import os
import warnings

import pandas as pd

from sinkhorn_em_repro.outputs import OSMFISH_MAP, OSMFISH_SEEDS
from sinkhorn_em_repro.plotting import style
from sinkhorn_em_repro.plotting.style import METHOD_LABELS, METHOD_ORDER, apply_style, method_color, save_figure

__all__ = ["plot_osmfish_ari", "plot_osmfish_map"]

_TARGET_TITLES = {"region": "regions", "celltype": "cell types"}
_WEIGHT_ORDER = ["true", "perturbed", "uniform"]
_WEIGHT_LABELS = {"true": "true\nproportions", "perturbed": "perturbed\nproportions", "uniform": "uniform"}


def _feature_title(features: str, n_features: int | None = None) -> str:
    """Readable name of a feature set; with ``n_features``, also its number of PCs."""
    if n_features is None:
        return {"expr": "expression", "expr+xy": "expression + x, y"}.get(features, features)
    if features == "expr+xy":
        return f"expression ({n_features - 2} PCs) + x, y"
    return f"expression ({n_features} PCs)" if features == "expr" else features


def plot_osmfish_ari(per_seed: str | os.PathLike | pd.DataFrame, pdf_path, png_path=None) -> None:
    """ARI of every seed: one panel per (target, features), groups = weight settings.

    Drawn with seaborn: per method, a box of the seeds' ARIs (quartiles, no outliers
    drawn) with its mean as a black bar, and the seeds themselves as a swarm (a
    deterministic layout, unlike random jitter); methods keep the shared colours of
    :mod:`.style`.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    table = style.load_table(per_seed, OSMFISH_SEEDS)
    apply_style()
    panels = table[["target", "features", "n_components", "n_features"]].drop_duplicates()
    panels = panels.assign(
        _t=panels["target"].map({"region": 0, "celltype": 1}), _f=panels["features"].map({"expr": 0, "expr+xy": 1})
    ).sort_values(["_t", "_f"])
    methods = [m for m in METHOD_ORDER if m in set(table["method"])]
    palette = {m: method_color(m) for m in methods}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), sharey=True, squeeze=False)
    for ax, (_, panel) in zip(axes[0], panels.iterrows()):
        rows = table[(table["target"] == panel["target"]) & (table["features"] == panel["features"])]
        rows = rows.sort_values(["method", "weights", "seed_index"])
        settings = [w for w in _WEIGHT_ORDER if w in set(rows["weights"])]
        layout = dict(data=rows, x="weights", y="ari", hue="method", order=settings, hue_order=methods, ax=ax)
        with warnings.catch_warnings():
            # seaborn 0.13 passes matplotlib >= 3.11 the deprecated `vert`; nothing to act on here.
            warnings.filterwarnings("ignore", message="vert: bool", category=DeprecationWarning)
            sns.boxplot(
                **layout,
                palette=palette,
                fill=False,
                width=0.8,
                linewidth=1.0,
                showfliers=False,
                showmeans=True,
                meanline=True,
                meanprops={"color": "black", "linestyle": "-", "linewidth": 1.2},
                legend=False,
            )
        # Above the boxes: with few seeds the dots sit on the whisker caps.
        sns.swarmplot(**layout, palette=palette, dodge=True, size=2.5, zorder=3, legend=False)
        ax.set_xticks(range(len(settings)), [_WEIGHT_LABELS[s] for s in settings])
        ax.set_xlim(-0.5, len(settings) - 0.5)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_title(
            f"{_TARGET_TITLES.get(panel['target'], panel['target'])} (K = {int(panel['n_components'])}), "
            f"{_feature_title(panel['features'], int(panel['n_features']))}"
        )
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
    axes[0, 0].set_ylabel("adjusted Rand index")
    handles = [Line2D([], [], marker="s", ls="", color=method_color(m), label=METHOD_LABELS.get(m, m)) for m in methods]
    handles.append(Line2D([], [], color="black", lw=1.2, label="mean over seeds"))
    ncol = len(handles) if len(panels) >= 3 else 2 * len(panels) + 1
    fig.legend(
        handles=handles, loc="upper center", ncol=min(ncol, len(handles)), frameon=False, bbox_to_anchor=(0.5, 0.0)
    )
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path)


def _class_colours(names: list[str]) -> dict[str, tuple]:
    """Distinct colours for up to 20 classes (tab20 reordered: dark shades first), else a continuous map."""
    import matplotlib

    if len(names) <= 20:
        palette = matplotlib.colormaps["tab20"].colors
        ordered = list(palette[0::2]) + list(palette[1::2])
        return {name: ordered[i] for i, name in enumerate(names)}
    cmap = matplotlib.colormaps["turbo"]
    return {name: cmap(i / max(len(names) - 1, 1)) for i, name in enumerate(names)}


def plot_osmfish_map(
    maps: str | os.PathLike | pd.DataFrame, pdf_path, png_path=None, *, point_size: float = 1.5
) -> None:
    """Cells at (x, y) coloured by the truth and by each method's best-likelihood clustering.

    One row per feature set, one column for the truth and one per method. A cluster is
    drawn in the colour of the true class it overlaps most (matching done when the
    table was made), so agreement with the truth reads as matching colours.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    table = style.load_table(maps, OSMFISH_MAP)
    apply_style()
    feature_sets = [f for f in ("expr", "expr+xy") if f in set(table["features"])]
    methods = [m for m in METHOD_ORDER if m in table.columns]
    names = sorted(set(table["truth"]))
    colours = _class_colours(names)
    columns = ["truth", *methods]
    fig, axes = plt.subplots(
        len(feature_sets), len(columns), figsize=(2.0 * len(columns), 2.6 * len(feature_sets)), squeeze=False
    )
    for row, feature_set in enumerate(feature_sets):
        cells = table[table["features"] == feature_set]
        for col, column in enumerate(columns):
            ax = axes[row, col]
            ax.scatter(
                cells["x"],
                cells["y"],
                c=[colours[v] for v in cells[column]],
                s=point_size,
                linewidths=0,
                rasterized=True,
            )
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if column == "truth":
                title = "annotated regions" if row == 0 else ""
                ax.set_ylabel(f"features: {_feature_title(feature_set)}")
            else:
                ari = cells[f"{column}_ari"].iloc[0]
                title = f"{METHOD_LABELS.get(column, column)}\nARI {ari:.2f} (seed {int(cells[f'{column}_seed_index'].iloc[0])})"
            ax.set_title(title)
    handles = [Line2D([], [], marker="o", ls="", color=colours[name], label=name, markersize=5) for name in names]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(names), 6), frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout()
    save_figure(fig, pdf_path, png_path)
