r"""Aggregation of the sweeps' runs: success fractions with Wilson intervals, medians, bias, per setting and method."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sinkhorn_em_repro.fitting import ESTIMATOR_METHOD
from sinkhorn_em_repro.intervals import wilson_interval

__all__ = [
    "EPSILON_TABLE_COLUMNS",
    "INIT_TABLE_COLUMNS",
    "PAIRS_KEY",
    "paired_starts",
    "summarise_epsilon_sweep",
    "summarise_init_sweep",
]


_METHOD_RANK = {m: r for r, m in enumerate(ESTIMATOR_METHOD)}


_SETTING_COLUMNS = ["K", "d", "weights", "separation"]


#: Leading columns of results/tables/init_sweep.csv; further columns follow.
INIT_TABLE_COLUMNS = [
    "K",
    "d",
    "weights",
    "separation",
    "init",
    "method",
    "n_runs",
    "success",
    "ci_low",
    "ci_high",
    "median_error",
    "median_iterations",
    "median_seconds",
]


#: Leading columns of results/tables/epsilon_sweep.csv.
EPSILON_TABLE_COLUMNS = [
    "method",
    "eps",
    "schedule",
    "K",
    "d",
    "weights",
    "separation",
    "init",
    "n_runs",
    "success",
    "ci_low",
    "ci_high",
    "mean_bias",
    "median_iterations",
]


_VARIANT_COLUMNS = ["method", "schedule", "eps", "eps0", "decay", "anneal_iterations"]


_RUN_KEY = ["dataset", "init_index"]


def _canonical_order(runs: pd.DataFrame, group_columns: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by setting, variant and run, so results do not depend on chunk order."""
    runs = runs.assign(_method_rank=runs["method"].map(_METHOD_RANK))
    keys = [c if c != "method" else "_method_rank" for c in group_columns] + _RUN_KEY
    return runs.sort_values(keys, kind="mergesort").drop(columns="_method_rank")


def _leading(table: pd.DataFrame, leading: Sequence[str]) -> pd.DataFrame:
    return table[[*leading, *(c for c in table.columns if c not in leading)]]


def _success_summary(group: pd.DataFrame) -> dict:
    n_runs = len(group)
    n_success = int(group["success"].sum())
    low, high = wilson_interval(n_success, n_runs)
    successes = group.loc[group["success"], "error"]
    return {
        "n_runs": n_runs,
        "n_success": n_success,
        "success": n_success / n_runs,
        "ci_low": low,
        "ci_high": high,
        "median_error": float(group["error"].median()),
        "median_error_success": float(successes.median()) if len(successes) else np.nan,
        "median_iterations": float(group["n_iter"].median()),
        "converged_fraction": float(group["converged"].mean()),
        "median_seconds": float(group["seconds"].median()),
    }


def _check_runs(runs: pd.DataFrame, group_columns: Sequence[str]) -> None:
    needed = set(group_columns) | set(_RUN_KEY) | {"error", "success", "n_iter", "converged", "seconds"}
    missing = sorted(needed - set(runs.columns))
    if missing:
        raise ValueError(f"run table lacks columns {missing}; pass the output of the chunk functions.")
    if runs.empty:
        raise ValueError("run table is empty: no chunk produced any run.")
    duplicated = runs.duplicated([*group_columns, *_RUN_KEY])
    if duplicated.any():
        raise ValueError(f"{int(duplicated.sum())} runs appear twice: a chunk was aggregated twice.")


def summarise_init_sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """Aggregate init-sweep runs per (setting, scheme, method).

    Parameters
    ----------
    runs : pandas.DataFrame
        Concatenated outputs of :func:`run_init_sweep_chunk`, in any order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`INIT_TABLE_COLUMNS`, then ``pairing, n_success,
        median_error_success, converged_fraction, median_reference_error,
        median_collapsed_error, collapsed_success_fraction``:
        success is the fraction of successful runs, ``[ci_low, ci_high]`` its Wilson 95%
        interval, then medians over datasets of the error of the reference run and of the
        trivial collapsed fit (:func:`collapsed_error`), and the fraction of datasets on which
        that trivial fit would pass the success rule (where it is > 0 the rule cannot tell
        a collapsed fit from the global optimum).
    """
    group_columns = [*_SETTING_COLUMNS, "init", "pairing", "method"]
    _check_runs(runs, group_columns)
    runs = _canonical_order(runs, group_columns)
    rows = []
    for key, group in runs.groupby(group_columns, sort=False):
        per_dataset = group.drop_duplicates("dataset")
        rows.append(
            {
                **dict(zip(group_columns, key)),
                **_success_summary(group),
                "median_reference_error": float(per_dataset["reference_error"].median()),
                "median_collapsed_error": float(per_dataset["collapsed_error"].median()),
                "collapsed_success_fraction": float(per_dataset["collapsed_success"].mean()),
            }
        )
    return _leading(pd.DataFrame(rows), INIT_TABLE_COLUMNS)


def summarise_epsilon_sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """Aggregate epsilon-sweep runs per (method variant, setting).

    Parameters
    ----------
    runs : pandas.DataFrame
        Concatenated outputs of :func:`run_epsilon_sweep_chunk`, in any order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EPSILON_TABLE_COLUMNS`, then ``eps0, decay, anneal_iterations,
        pairing``, the other success columns of :func:`summarise_init_sweep` (success =
        reaching the constant-epsilon-1 optimum), ``n_success_own, success_own, own_ci_low,
        own_ci_high`` (reaching the variant's own optimum), and the bias of the variant,
        averaged over datasets: ``mean_bias`` (matched error of the fit
        started at the truth, means and covariances), ``mean_bias_means`` (means only) and
        ``mean_shift`` (its distance to the constant-epsilon-1 fit of the same method on the
        same data; 0 for epsilon = 1), ``mean_collapsed_error`` (:func:`collapsed_error`) and
        ``collapsed_success_fraction`` (as in :func:`summarise_init_sweep`).
    """
    group_columns = [*_VARIANT_COLUMNS, *_SETTING_COLUMNS, "init", "pairing"]
    _check_runs(runs, group_columns)
    runs = _canonical_order(runs, group_columns)
    rows = []
    for key, group in runs.groupby(group_columns, sort=False):
        per_dataset = group.drop_duplicates("dataset")
        n_own = int(group["success_own"].sum())
        own_low, own_high = wilson_interval(n_own, len(group))
        rows.append(
            {
                **dict(zip(group_columns, key)),
                **_success_summary(group),
                "n_success_own": n_own,
                "success_own": n_own / len(group),
                "own_ci_low": own_low,
                "own_ci_high": own_high,
                "mean_bias": float(per_dataset["reference_error"].mean()),
                "mean_bias_means": float(per_dataset["reference_error_means"].mean()),
                "mean_shift": float(per_dataset["reference_shift"].mean()),
                "mean_collapsed_error": float(per_dataset["collapsed_error"].mean()),
                "collapsed_success_fraction": float(per_dataset["collapsed_success"].mean()),
            }
        )
    return _leading(pd.DataFrame(rows), EPSILON_TABLE_COLUMNS)


#: One start of the init sweep: the rows of ``init_sweep_pairs.csv`` are unique on these columns.
PAIRS_KEY = [*_SETTING_COLUMNS, "init", "pairing", "dataset", "init_index"]


def paired_starts(runs: pd.DataFrame) -> pd.DataFrame:
    """Init-sweep runs side by side per start: every method's success and error from the same start.

    Every method of a start fits the same data from the same initial means (the seeds depend on
    the setting, dataset, scheme and initialisation index, never on the method), so the rows
    are the pairs of the report's paired tests (McNemar's exact test on success).

    Parameters
    ----------
    runs : pandas.DataFrame
        Concatenated outputs of :func:`run_init_sweep_chunk`, in any order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PAIRS_KEY`, then ``success_<method>`` and ``error_<method>`` for every
        method of the runs (in the order vEM, oEM, sEM), sorted by :data:`PAIRS_KEY`.
    """
    _check_runs(runs, [*PAIRS_KEY[:-2], "method"])
    methods = sorted(set(runs["method"]), key=_METHOD_RANK.get)
    wide = runs.pivot(index=PAIRS_KEY, columns="method", values=["success", "error"])
    wide = wide.reindex(columns=[(value, m) for value in ("success", "error") for m in methods])
    wide.columns = [f"{value}_{method}" for value, method in wide.columns]
    wide = wide.reset_index().sort_values(PAIRS_KEY, kind="mergesort").reset_index(drop=True)
    for method in methods:
        wide[f"success_{method}"] = wide[f"success_{method}"].astype(bool)
    return wide
