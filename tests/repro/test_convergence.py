"""Convergence-rate experiments (sinkhorn_em_repro.experiments.convergence) on tiny settings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sinkhorn_em_repro.experiments.convergence import (
    general_k_rates,
    linear_rate,
    run_general_k,
    run_symmetric_trajectories,
    symmetric_rates,
)
from sinkhorn_em_repro.fitting import FitOptions
from sinkhorn_em_repro.symmetric import population_grid, run_symmetric

RATE_COLUMNS = ["method", "theta_star", "alpha", "theta0", "rate", "iterations_to_1e-6"]


def test_linear_rate_recovers_a_geometric_sequence():
    t = np.arange(60)
    errors = 2.0 * 0.6**t
    rate, basis, first, last = linear_rate(errors, window=(1e-12, 1e-3))
    assert rate == pytest.approx(0.6, rel=1e-10)
    assert basis == "window"
    assert errors[first] <= 1e-3 < errors[first - 1]
    assert errors[last] >= 1e-12 > errors[last + 1]


def test_linear_rate_of_a_fast_run_brackets_the_window():
    errors = np.array([1.0, 1e-2, 1e-8, 1e-14, 0.0])
    rate, basis, first, last = linear_rate(errors, window=(1e-12, 1e-3))
    assert basis == "bracket" and (first, last) == (1, 3)
    assert rate == pytest.approx(1e-6)


def test_linear_rate_of_a_sublinear_run_uses_the_tail_and_is_near_one():
    t = np.arange(1000)
    rate, basis, _, _ = linear_rate(1 / np.sqrt(1 + t), window=(1e-12, 1e-3))
    assert basis == "tail"
    assert 0.999 < rate < 1.0


def test_linear_rate_rejects_a_bad_window():
    with pytest.raises(ValueError, match="window"):
        linear_rate(np.ones(5), window=(1e-3, 1e-12))


@pytest.fixture(scope="module")
def tiny_trajectories():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return run_symmetric_trajectories(
            theta_stars=[1.0],
            alphas=[0.7],
            theta0_factors=[-1.0, 2.0],
            overspecified_alphas=[0.7],
            overspecified_theta0s=[0.5],
            max_iter=300,
        )


def test_rates_table_has_the_promised_columns_and_one_row_per_run(tiny_trajectories):
    rates = symmetric_rates(tiny_trajectories)
    assert list(rates.columns[:6]) == RATE_COLUMNS
    assert len(rates) == 3 * (2 + 1)
    assert rates["rate"].between(0, 1).all()
    reached = rates.dropna(subset=["iterations_to_1e-6"])
    for row in reached.itertuples():
        run = tiny_trajectories[
            (tiny_trajectories["method"] == row.method)
            & (tiny_trajectories["theta_star"] == row.theta_star)
            & (tiny_trajectories["theta0"] == row.theta0)
        ]
        first_below = run.loc[run["error"] < 1e-6, "iteration"].min()
        assert row._6 == first_below  # iterations_to_1e-6


def test_overspecified_unbalanced_rate_is_the_theoretical_one(tiny_trajectories):
    # Truth N(0, 1) fitted with weights (a, 1 - a): near theta = 0 both EM maps are
    # theta -> (1 - (2a - 1)^2) theta, so the linear rate is 1 - (2a - 1)^2 = 0.84 at a = 0.7.
    rates = symmetric_rates(tiny_trajectories)
    over = rates[(rates["theta_star"] == 0) & rates["method"].isin(["vEM", "sEM"])]
    np.testing.assert_allclose(over["rate"], 0.84, rtol=1e-3)


def test_rate_matches_the_derivative_of_the_population_map_at_the_truth(tiny_trajectories):
    # The linear rate of a map converging to a fixed point is |M'(theta*)|: compare the
    # fitted slope with a finite difference of one population iteration.
    x, weights = population_grid(1.0, 0.7)
    rates = symmetric_rates(tiny_trajectories).set_index(["method", "theta_star", "theta0"])
    step = 1e-5
    for method in ("vEM", "sEM"):
        after = run_symmetric(x, [1.0 - step, 1.0 + step], 0.7, method, 1, sample_weights=weights).theta[1]
        derivative = (after[1] - after[0]) / (2 * step)
        assert rates.loc[(method, 1.0, 2.0), "rate"] == pytest.approx(abs(derivative), rel=1e-4)


def test_rate_ratio_is_sem_over_vem_only_when_both_reach_the_truth(tiny_trajectories):
    rates = symmetric_rates(tiny_trajectories).set_index(["method", "theta_star", "alpha", "theta0"])
    key = (1.0, 0.7, 2.0)
    expected = rates.loc[("sEM", *key), "rate"] / rates.loc[("vEM", *key), "rate"]
    assert rates.loc[("oEM", *key), "rate_ratio_sem_vem"] == pytest.approx(expected)
    stuck = rates[rates["iterations_to_1e-6"].isna()].reset_index()
    stuck = stuck[stuck["method"].isin(["vEM", "sEM"])]
    assert not stuck.empty  # vEM started at -theta* stays at a spurious fixed point
    for row in stuck.itertuples():
        assert np.isnan(rates.loc[("oEM", row.theta_star, row.alpha, row.theta0), "rate_ratio_sem_vem"])


def general_k_options(max_iter: int) -> FitOptions:
    """The default config's general-K fit options with a budget of ``max_iter`` iterations."""
    return FitOptions(tol=0.0, max_iter=max_iter, covariance_type="full", sinkhorn_tol=1e-12, sinkhorn_max_iter=20000)


def test_general_k_runs_every_method_from_the_same_start():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = run_general_k(seed=1, n_samples=300, n_datasets=1, options=general_k_options(25), separation=2.5)
    assert set(table["method"]) == {"vEM", "oEM", "sEM"}
    starts = table[table["iteration"] == 0]
    assert starts["error_to_truth"].nunique() == 1  # shared initialisation
    lasts = table.groupby("method").tail(1)
    assert (lasts["error_to_limit"] == 0).all()
    for _, run in table.groupby("method"):
        assert run["error_to_limit"].iloc[-5] < run["error_to_limit"].iloc[0] * 0.1
    rates = general_k_rates(table, window=(1e-9, 1e-2))
    assert len(rates) == 3 and rates["rate"].between(0, 1).all()


def test_plot_convergence_draws_the_runs_and_the_speed_ratios(tmp_path, tiny_trajectories, saved_figures):
    from sinkhorn_em_repro.plotting.convergence import plot_convergence

    general_k = run_general_k(seed=1, n_samples=200, n_datasets=1, options=general_k_options(15), separation=2.5)
    rates = symmetric_rates(tiny_trajectories)
    plot_convergence(tiny_trajectories, rates, general_k, general_k_rates(general_k), tmp_path / "rates.pdf")
    assert (tmp_path / "rates.png").is_file()
    (figure,) = saved_figures
    ratio_ax = next(ax for ax in figure.axes if "speed ratio" in ax.get_title())
    (points,) = ratio_ax.collections
    # q = iterations per decade of sEM / of vEM = log(rate vEM) / log(rate sEM), where both converge.
    linear = rates[rates["iterations_to_1e-6"].notna() & (rates["theta_star"] > 0)].set_index(
        ["theta_star", "alpha", "theta0", "method"]
    )["rate"]
    expected = sorted(
        np.log(linear[(*key, "vEM")]) / np.log(linear[(*key, "sEM")])
        for key in {k[:3] for k in linear.index}
        if (*key, "vEM") in linear.index and (*key, "sEM") in linear.index
    )
    assert expected, "the tiny setting must have comparable runs"
    np.testing.assert_allclose(sorted(points.get_offsets()[:, 1]), expected, rtol=1e-12)
    # The general-K panel draws every run's distance to its limit (positive values only).
    k_ax = next(ax for ax in figure.axes if "K = 3" in ax.get_title())
    drawn = sorted(len(line.get_xdata()) for line in k_ax.get_lines())
    positive = sorted(int((run["error_to_limit"] > 1e-15).sum()) for _, run in general_k.groupby(["method", "dataset"]))
    assert drawn == positive


@pytest.mark.pipeline
def test_tiny_pipeline_writes_the_rate_tables(tiny_run_cores2):
    from sinkhorn_em_repro.pipeline import read_table

    tables = tiny_run_cores2.workdir / "results" / "tables"
    rates = read_table(tables / "convergence_rates.csv")
    assert list(rates.columns[:6]) == RATE_COLUMNS
    assert set(rates["method"]) == {"vEM", "oEM", "sEM"}
    assert (rates["theta_star"] == 0).any()  # the overspecified case is included
    general = read_table(tables / "convergence_general_k_rates.csv")
    assert set(general["method"]) == {"vEM", "oEM", "sEM"}
