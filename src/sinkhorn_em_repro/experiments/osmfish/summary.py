r"""Summaries of the osmFISH fits: per-seed rows in canonical order, and mean ARI / NMI per setting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.osmfish.plan import FEATURE_SETS, METHODS, TARGETS, WEIGHT_SETTINGS

__all__ = ["combine_per_seed", "summarise_osmfish"]


def _canonical_order(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows sorted by the order of TARGETS, FEATURE_SETS, WEIGHT_SETTINGS, METHODS (then seed)."""
    order = {"target": TARGETS, "features": FEATURE_SETS, "weights": WEIGHT_SETTINGS, "method": METHODS}
    ranks = [table[key].map({v: i for i, v in enumerate(order[key])}) if key in order else table[key] for key in keys]
    return table.iloc[np.lexsort(ranks[::-1])].reset_index(drop=True)


def combine_per_seed(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-seed chunk tables in canonical order; duplicated seeds are an error."""
    keys = ["target", "features", "weights", "method", "seed_index"]
    table = pd.concat(chunks, ignore_index=True)
    duplicated = table.duplicated(keys)
    if duplicated.any():
        raise ValueError(
            f"{int(duplicated.sum())} per-seed rows appear twice (first: {table[duplicated].iloc[0][keys].to_dict()}); "
            "the chunks overlap - regenerate them with one seeds_per_job"
        )
    return _canonical_order(table, keys)


def summarise_osmfish(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Aggregate per-seed rows into one row per (target, features, weights, method).

    Columns: target, features, weights, method, n_components, n_features, ari_mean, ari_sd,
    nmi_mean, nmi_sd, n_seeds, ari_best_ll (ARI of the highest-likelihood seed, what a
    user without labels would keep), ari_drop and nmi_drop (mean over seeds of the
    paired loss ``metric(true weights) - metric(this setting)`` for the same seed;
    0 for ``true``, positive = degradation), converged_fraction,
    sinkhorn_converged_fraction, mean_n_iter,
    weights_tv_mean, mean_fit_seconds. Standard deviations use ``ddof=1``.
    """
    keys = ["target", "features", "weights", "method"]
    reference = per_seed[per_seed["weights"] == "true"].set_index(["target", "features", "method", "seed_index"])
    rows = []
    for key, group in per_seed.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        best = group.loc[group["mean_loglik"].idxmax()]
        row.update(
            n_components=int(group["n_components"].iloc[0]),
            n_features=int(group["n_features"].iloc[0]),
            ari_mean=group["ari"].mean(),
            ari_sd=group["ari"].std(ddof=1) if len(group) > 1 else np.nan,
            nmi_mean=group["nmi"].mean(),
            nmi_sd=group["nmi"].std(ddof=1) if len(group) > 1 else np.nan,
            n_seeds=len(group),
            ari_best_ll=best["ari"],
        )
        paired_index = pd.MultiIndex.from_arrays(
            [group["target"], group["features"], group["method"], group["seed_index"]]
        )
        for metric in ("ari", "nmi"):
            if reference.empty or not paired_index.isin(reference.index).all():
                row[f"{metric}_drop"] = np.nan
            else:
                row[f"{metric}_drop"] = float(
                    np.mean(reference.loc[paired_index, metric].to_numpy() - group[metric].to_numpy())
                )
        row.update(
            converged_fraction=group["converged"].astype(float).mean(),
            sinkhorn_converged_fraction=group["sinkhorn_converged"].astype(float).mean(),
            mean_n_iter=group["n_iter"].mean(),
            weights_tv_mean=group["weights_tv"].mean(),
            mean_fit_seconds=group["fit_seconds"].mean(),
        )
        rows.append(row)
    return _canonical_order(pd.DataFrame(rows), keys)
