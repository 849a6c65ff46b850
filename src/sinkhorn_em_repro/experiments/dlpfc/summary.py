"""Per-seed tables of the spatial-domain fits: combining chunks, summaries with intervals, map refits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.dlpfc.features import FEATURE_SETS, SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.fits import (
    COVARIANCE_TYPES,
    METHODS,
    STARTS,
    WEIGHT_SETTINGS,
    fit_from_start,
    score_labels,
    seed_start,
)
from sinkhorn_em_repro.experiments.osmfish import match_labels
from sinkhorn_em_repro.fitting import FitOptions
from sinkhorn_em_repro.intervals import t_interval

__all__ = [
    "ALL_METHODS",
    "ALL_WEIGHTS",
    "SETTING_KEYS",
    "best_seed_maps",
    "combine_per_seed",
    "summarise_dlpfc",
    "with_start",
]

#: Methods in table order: ours, scikit-learn, and R's mclust (EEE) from our start and from its own.
ALL_METHODS = (*METHODS, "mclust", "mclust_hc")
#: ``none``: mclust's own start uses no weights.
ALL_WEIGHTS = (*WEIGHT_SETTINGS, "none")
SETTING_KEYS = ["slice", "features", "covariance_type", "weights", "method", "start"]
_ORDER = {
    "features": FEATURE_SETS,
    "covariance_type": COVARIANCE_TYPES,
    "weights": ALL_WEIGHTS,
    "method": ALL_METHODS,
    "start": STARTS,
}


def with_start(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``start`` column: rows of tables made before the hc start are k-means++ starts."""
    if "start" in table.columns:
        return table
    return table.assign(start=np.where(table["method"] == "mclust_hc", "hc", "kmeans++"))


def _canonical_order(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    ranks = [table[key].map({v: i for i, v in enumerate(_ORDER[key])}) if key in _ORDER else table[key] for key in keys]
    return table.iloc[np.lexsort(ranks[::-1])].reset_index(drop=True)


def combine_per_seed(chunks: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-seed chunk tables in canonical order; a seed present twice is an error."""
    keys = [*SETTING_KEYS, "seed_index"]
    table = pd.concat([with_start(chunk) for chunk in chunks], ignore_index=True)
    duplicated = table.duplicated(keys)
    if duplicated.any():
        raise ValueError(
            f"{int(duplicated.sum())} per-seed rows appear twice (first: {table[duplicated].iloc[0][keys].to_dict()}); "
            "the chunks overlap - regenerate them with one seeds_per_job"
        )
    return _canonical_order(table, keys)


def summarise_dlpfc(per_seed: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """One row per (slice, features, covariance_type, weights, method, start).

    Columns: the keys, n_components, n_features, n_seeds, ari_mean, ari_sd, ari_low,
    ari_high, nmi_mean, nmi_sd, nmi_low, nmi_high (Student-t ``confidence`` intervals of the
    mean over seeds; NaN with one seed), ari_best_ll and nmi_best_ll (of the seed with the
    highest mean log-likelihood, what a user without labels would keep), converged_fraction,
    sinkhorn_converged_fraction, mean_n_iter, weights_tv_mean, mean_fit_seconds and
    median_fit_seconds. Standard deviations use ``ddof=1``.
    """
    rows = []
    per_seed = with_start(per_seed)
    for key, group in per_seed.groupby(SETTING_KEYS, sort=False):
        row = dict(zip(SETTING_KEYS, key))
        n = len(group)
        row.update(n_components=int(group["n_components"].iloc[0]), n_features=int(group["n_features"].iloc[0]))
        row["n_seeds"] = n
        for metric in ("ari", "nmi"):
            mean, sd = group[metric].mean(), group[metric].std(ddof=1) if n > 1 else np.nan
            low, high = t_interval(mean, sd, n, confidence)
            row.update({f"{metric}_mean": mean, f"{metric}_sd": sd, f"{metric}_low": low, f"{metric}_high": high})
        finite = group[np.isfinite(group["mean_loglik"])]
        best = finite.loc[finite["mean_loglik"].idxmax()] if len(finite) else None
        row["ari_best_ll"] = np.nan if best is None else best["ari"]
        row["nmi_best_ll"] = np.nan if best is None else best["nmi"]
        row.update(
            converged_fraction=group["converged"].astype(float).mean(),
            sinkhorn_converged_fraction=group["sinkhorn_converged"].astype(float).mean(),
            mean_n_iter=group["n_iter"].mean(),
            weights_tv_mean=group["weights_tv"].mean(),
            mean_fit_seconds=group["fit_seconds"].mean(),
            median_fit_seconds=group["fit_seconds"].median(),
        )
        rows.append(row)
    return _canonical_order(pd.DataFrame(rows), SETTING_KEYS)


def best_seed_maps(
    features_by_slice: dict[str, SpotFeatures],
    per_seed: pd.DataFrame,
    *,
    feature_set: str,
    weights: str,
    base_seed: int,
    options: FitOptions,
    perturb_strength: float = 0.5,
) -> pd.DataFrame:
    """Spot labels of each method's highest-likelihood seed, for the tissue maps.

    For every slice of ``features_by_slice`` (features of ``feature_set``) and every one of
    our methods and scikit-learn present in ``per_seed`` for (``feature_set``,
    ``covariance_type``, ``weights``) from the k-means++ start, the seed with the largest ``mean_loglik`` is refitted
    from its recorded start (fits are deterministic given the seed), and its clusters are
    renamed after the layer they overlap most (Hungarian matching, unlabelled spots left
    out). The refit must reproduce the recorded log-likelihood, else ValueError. ``options``
    are the fits' options, their ``covariance_type`` the setting of the map.

    Returns
    -------
    Long DataFrame: slice, method ("truth" for the annotation), seed_index, ari, spot, x, y,
    label (layer name; "" for unlabelled spots in the truth rows).
    """
    covariance_type = options.covariance_type
    frames = []
    for sample, features in features_by_slice.items():
        names = features.layer_names
        truth = np.where(features.labelled, names[np.maximum(features.layer, 0)], "")
        base = {"slice": str(sample), "spot": np.arange(truth.size), "x": features.x, "y": features.y}
        frames.append(pd.DataFrame({**base, "method": "truth", "seed_index": -1, "ari": 1.0, "label": truth}))
        rows = with_start(per_seed)
        rows = rows[
            (rows["start"] == "kmeans++")
            & (rows["slice"] == str(sample))
            & (rows["features"] == feature_set)
            & (rows["covariance_type"] == covariance_type)
            & (rows["weights"] == weights)
        ]
        for method in [m for m in METHODS if m in set(rows["method"])]:
            best = (
                rows[rows["method"] == method]
                .sort_values(["mean_loglik", "seed_index"], ascending=[False, True])
                .iloc[0]
            )
            start = seed_start(
                features,
                sample=str(sample),
                feature_set=feature_set,
                covariance_type=covariance_type,
                weights=weights,
                seed_index=int(best["seed_index"]),
                base_seed=base_seed,
                strength=perturb_strength,
                reg_covar=options.reg_covar,
            )
            model = fit_from_start(method, features, start, options).model
            refit = float(model.score(features.X))
            if not np.isclose(refit, best["mean_loglik"], rtol=1e-7, atol=1e-7):
                raise ValueError(
                    f"refit of {method} seed {int(best['seed_index'])} on slice {sample} gives mean log-likelihood "
                    f"{refit} instead of the recorded {best['mean_loglik']}: the per-seed table was made with "
                    "another configuration; rerun the fit jobs"
                )
            labels = model.predict(features.X)
            mask = features.labelled
            matched = np.empty(labels.size, dtype=np.int64)
            matched[mask] = match_labels(features.layer[mask], labels[mask], features.n_classes)
            # Unlabelled spots take the layer their cluster was matched to among labelled spots.
            lookup = {cluster: layer for cluster, layer in zip(labels[mask], matched[mask])}
            matched[~mask] = [lookup.get(cluster, 0) for cluster in labels[~mask]]
            ari, _ = score_labels(features, labels)
            frames.append(
                pd.DataFrame(
                    {
                        **base,
                        "method": method,
                        "seed_index": int(best["seed_index"]),
                        "ari": ari,
                        "label": names[matched],
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    return table[["slice", "method", "seed_index", "ari", "spot", "x", "y", "label"]]
