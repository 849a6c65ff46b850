r"""Summaries of the C. elegans fits: mean and Student-t interval of every metric over trials, per iterate."""

from __future__ import annotations

import pandas as pd

from sinkhorn_em_repro.experiments.celegans.fit import INITS, METHODS, METRICS
from sinkhorn_em_repro.intervals import t_interval
from sinkhorn_em_repro.labels import PROJECT, PROTOCOLS

__all__ = ["final_summary", "final_trials", "summarise_celegans"]


_KEYS = ["dataset", "n_neurons", "n_voxels", "n_datasets", "pool", "protocol", "init", "method"]


def _metric_columns(per_iteration: pd.DataFrame) -> list[str]:
    def radius(column):
        return float(column.rsplit("_r", 1)[1])

    accuracies = sorted((c for c in per_iteration.columns if c.startswith("accuracy_r")), key=radius)
    identity = sorted((c for c in per_iteration.columns if c.startswith("identity_accuracy_r")), key=radius)
    extra = ["identity_position_error"] if "identity_position_error" in per_iteration.columns else []
    return [*accuracies, *METRICS, *identity, *extra]


def _pooled(per_iteration: pd.DataFrame, pools: dict) -> list[pd.DataFrame]:
    """Rows of several datasets relabelled as one pooled dataset (each worm-trial one sample)."""
    frames = []
    for pooled_name, members in (pools or {}).items():
        rows = per_iteration[per_iteration["dataset"].isin(members)]
        if rows.empty:
            continue
        sizes = rows.drop_duplicates("dataset")
        frames.append(
            rows.assign(
                dataset=pooled_name,
                n_neurons=int(round(sizes["n_neurons"].mean())),
                n_voxels=int(round(sizes["n_voxels"].mean())),
                n_datasets=len(sizes),
                pool="",
                trial=rows["dataset"] + ":" + rows["trial"].astype(str),
            )
        )
    return frames


def summarise_celegans(
    per_iteration: pd.DataFrame, pools: dict | None = None, confidence: float = 0.95
) -> pd.DataFrame:
    """Mean and Student-t confidence interval of each metric over trials, per iterate.

    Parameters
    ----------
    per_iteration : DataFrame
        Rows of :func:`run_celegans_chunk` (any number of datasets, methods, chunks).
    pools : dict of str -> list of str, optional
        Extra pooled datasets: name -> member datasets. A pooled dataset treats every
        (member, trial) as one sample; its ``n_neurons`` and ``n_voxels`` are the
        members' means and ``n_datasets`` their number.
    confidence : float
        Level of the interval.

    Returns
    -------
    DataFrame
        One row per (protocol, dataset, init, method, metric, iteration) with columns
        dataset, n_neurons, n_voxels, n_datasets, pool (the pooled dataset that includes
        this one, empty if none), init, method, metric, iteration, ``mean``, ``ci_low``,
        ``ci_high`` (:math:`\\bar x \\pm t_{n-1, (1+c)/2}\\, s/\\sqrt n`, clipped to [0, 1]
        for accuracies and to >= 0 for the position errors; equal to the mean when
        ``n_trials = 1``), ``n_trials``, ``mean_wall_seconds`` (mean fit time up to that
        iterate), then ``protocol`` (``project`` or ``authors``; rows without the column
        are this project's) and ``sd`` (standard deviation over trials, NaN for one trial).
        Metrics a protocol does not record (the identity metrics of this project's rows)
        have no rows.
    """
    if per_iteration.empty:
        raise ValueError("no per-iteration rows to summarise")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if "protocol" not in per_iteration.columns:
        per_iteration = per_iteration.assign(protocol=PROJECT)
    metrics = _metric_columns(per_iteration)
    pool_of = {member: name for name, members in (pools or {}).items() for member in members}
    singles = per_iteration.assign(
        n_datasets=1,
        pool=per_iteration["dataset"].map(lambda name: pool_of.get(name, "")),
        trial=per_iteration["trial"].astype(str),
    )
    rows = pd.concat([singles, *_pooled(per_iteration, pools)], ignore_index=True)
    long = rows.melt(
        id_vars=[*_KEYS, "trial", "iteration", "wall_seconds"],
        value_vars=metrics,
        var_name="metric",
        value_name="value",
    ).dropna(subset=["value"])
    summary = (
        long.groupby([*_KEYS, "metric", "iteration"], sort=False)
        .agg(
            mean=("value", "mean"),
            sd=("value", "std"),
            n_trials=("value", "size"),
            mean_wall_seconds=("wall_seconds", "mean"),
        )
        .reset_index()
    )
    summary["ci_low"], summary["ci_high"] = t_interval(
        summary["mean"], summary["sd"], summary["n_trials"], confidence, single_width=0.0
    )
    # Accuracies live in [0, 1] and distances are >= 0: clip the symmetric interval there.
    bounded = summary["metric"].str.contains("accuracy_r")
    summary.loc[bounded, ["ci_low", "ci_high"]] = summary.loc[bounded, ["ci_low", "ci_high"]].clip(0.0, 1.0)
    distance = summary["metric"].str.endswith("position_error")
    summary.loc[distance, "ci_low"] = summary.loc[distance, "ci_low"].clip(lower=0.0)
    rank = {
        "metric": {name: k for k, name in enumerate(metrics)},
        "method": {name: k for k, name in enumerate(METHODS)},
        "init": {name: k for k, name in enumerate(INITS)},
        "protocol": {name: k for k, name in enumerate(PROTOCOLS)},
    }
    summary = summary.sort_values(
        ["n_datasets", "dataset", "protocol", "init", "metric", "method", "iteration"],
        key=lambda col: col.map(rank[col.name]) if col.name in rank else col,
        kind="stable",
    )
    columns = [
        *_KEYS[:5],
        "init",
        "method",
        "metric",
        "iteration",
        "mean",
        "ci_low",
        "ci_high",
        "n_trials",
        "mean_wall_seconds",
        "protocol",
        "sd",
    ]
    return summary[columns].reset_index(drop=True)


def final_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`summarise_celegans` at the last iterate of each setting."""
    last = summary.groupby(["protocol", "dataset", "init", "method", "metric"], sort=False)["iteration"].transform(
        "max"
    )
    return summary[summary["iteration"] == last].reset_index(drop=True)


def final_trials(per_iteration: pd.DataFrame, pools: dict | None = None) -> pd.DataFrame:
    """Every metric of every trial at the last iterate: the pairs of the report's paired tests.

    All methods of a (dataset, trial, init) fit the same voxels from the same start, so the
    rows of one (protocol, dataset, init, trial, metric) are a pair (or triple) of methods.

    Parameters
    ----------
    per_iteration : DataFrame
        Rows of :func:`run_celegans_chunk` (and of the authors' protocol).
    pools : dict of str -> list of str, optional
        Pooled datasets (:func:`summarise_celegans`): ``pool`` names the pool of each member.

    Returns
    -------
    DataFrame
        Columns protocol, dataset, pool (empty if none), init, method, trial, metric,
        iteration, value; sorted, one row per (protocol, dataset, init, method, trial, metric).
    """
    if per_iteration.empty:
        raise ValueError("no per-iteration rows to summarise")
    if "protocol" not in per_iteration.columns:
        per_iteration = per_iteration.assign(protocol=PROJECT)
    metrics = _metric_columns(per_iteration)
    pool_of = {member: name for name, members in (pools or {}).items() for member in members}
    keys = ["protocol", "dataset", "init", "method", "trial"]
    last = per_iteration.groupby(keys, sort=False)["iteration"].transform("max")
    rows = per_iteration[per_iteration["iteration"] == last].assign(
        pool=lambda t: t["dataset"].map(lambda name: pool_of.get(name, ""))
    )
    long = rows.melt(
        id_vars=[*keys, "pool", "iteration"], value_vars=metrics, var_name="metric", value_name="value"
    ).dropna(subset=["value"])
    rank = {
        "method": {name: k for k, name in enumerate(METHODS)},
        "init": {name: k for k, name in enumerate(INITS)},
        "protocol": {name: k for k, name in enumerate(PROTOCOLS)},
        "metric": {name: k for k, name in enumerate(metrics)},
    }
    long = long.sort_values(
        ["protocol", "dataset", "init", "metric", "method", "trial"],
        key=lambda col: col.map(rank[col.name]) if col.name in rank else col,
        kind="stable",
    )
    columns = ["protocol", "dataset", "pool", "init", "method", "trial", "metric", "iteration", "value"]
    return long[columns].reset_index(drop=True)
