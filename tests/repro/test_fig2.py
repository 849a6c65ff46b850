"""Figure 2 experiment (sinkhorn_em_repro.experiments.fig2) and its figure on tiny grids."""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pandas as pd
import pytest

from sinkhorn_em_repro.experiments.fig2 import (
    combine_chunks,
    fig2_noise,
    fig2_sample,
    iterations_to_converge,
    run_estep_check,
    run_fig2,
)
from sinkhorn_em_repro.plotting.style import METHOD_LABELS

REQUIRED_COLUMNS = [
    "method",
    "alpha",
    "theta0",
    "rep",
    "theta_final",
    "error_iter4",
    "error_final",
    "iters_to_converge",
]
TINY = dict(
    seed=3, theta0s=[-2.0, -0.4, 1.2], n_reps=2, n_samples=200, vem_iterations=40, oem_iterations=40, sem_iterations=10
)


def test_sample_shifts_the_first_int_n_alpha_points_as_the_notebook():
    noise = fig2_noise(1, 1000, rep=0)
    grid_values = np.linspace(0.5, 1.0, 51)
    # int() truncates 1000 * alpha: the notebook puts 679, 919, 929 points at +1 for
    # alpha* = 0.68, 0.92, 0.93 (products stored just below the integer).
    cases = [(grid_values[18], 679), (grid_values[42], 919), (grid_values[43], 929), (0.78, 780), (0.5, 500)]
    for alpha, n_positive in [*cases, (1.0, 1000), (0.123, 123)]:
        shift = fig2_sample(noise, alpha) - noise
        np.testing.assert_array_equal(np.flatnonzero(shift > 0), np.arange(n_positive))


def test_noise_depends_on_repetition_only():
    np.testing.assert_array_equal(fig2_noise(5, 100, 2), fig2_noise(5, 100, 2))
    assert not np.array_equal(fig2_noise(5, 100, 2), fig2_noise(5, 100, 3))


def test_iterations_to_converge_counts_iterations_after_the_start():
    # Rows are e_1 .. e_T; the answer is 1-based; strictly below 1.5 e_T; NaN if none qualifies.
    errors = np.array([[1.0, 5.0, 0.0], [0.4, 5.0, 0.0], [0.16, 5.0, 0.0], [0.15, 5.0, 0.0], [0.1, 5.0, 0.0]])
    np.testing.assert_array_equal(iterations_to_converge(errors, 1.5), [4, 1, np.nan])


def test_run_fig2_has_one_row_per_setting_and_no_nan_even_at_alpha_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = run_fig2(alphas=[0.5, 0.8, 1.0], **TINY)
    assert list(runs.columns[:5]) == REQUIRED_COLUMNS[:5]
    assert set(REQUIRED_COLUMNS) <= set(runs.columns)
    assert len(runs) == 3 * 3 * 3 * 2
    assert not runs.duplicated(["method", "alpha", "theta0", "rep"]).any()
    assert runs[REQUIRED_COLUMNS].notna().all().all()
    # The error is the squared W2 with the model's weights (alpha* for vEM and sEM, the
    # estimate paired with the last mean for oEM), recomputed by POT's exact LP.
    expected = [
        ot.emd2([w, 1 - w], [a, 1 - a], (np.array([[t], [-t]]) - np.array([[1.0, -1.0]])) ** 2)
        for t, w, a in zip(runs["theta_final"], runs["weight_final"], runs["alpha"])
    ]
    np.testing.assert_allclose(runs["error_final"], expected, rtol=0, atol=1e-12)
    fixed = runs[runs["method"] != "oEM"]
    np.testing.assert_array_equal(fixed["weight_final"], fixed["alpha"])
    assert runs["iters_to_converge"].between(1, runs["n_iter"]).all()
    np.testing.assert_array_equal(
        runs["right_sign"],
        (np.sign(runs["theta_final"]) == np.sign(runs["weight_final"] - 0.5)) | (runs["alpha"] == 0.5),
    )


def test_alpha_one_fits_the_sample_mean():
    runs = run_fig2(alphas=[1.0], **TINY)
    for rep in range(TINY["n_reps"]):
        mean = fig2_sample(fig2_noise(TINY["seed"], TINY["n_samples"], rep), 1.0).mean()
        np.testing.assert_allclose(runs.loc[runs["rep"] == rep, "theta_final"], mean, rtol=0, atol=1e-13)


def test_table_does_not_depend_on_chunking():
    whole = run_fig2(alphas=[0.6, 0.7, 0.9], **TINY)
    chunks = [run_fig2(alphas=[0.9], **TINY), run_fig2(alphas=[0.6, 0.7], **TINY)]
    pd.testing.assert_frame_equal(combine_chunks([whole]), combine_chunks(chunks))


def test_sweep_estep_agrees_with_exact_estep_where_sweeps_converge():
    check = run_estep_check(
        seed=3,
        alphas=[0.7, 0.95, 1.0],
        theta0s=[-2.0, 2.0],
        n_reps=1,
        n_samples=300,
        sem_iterations=10,
        sinkhorn_sweeps=200,
    )
    converged = check[check["sinkhorn_row_error_max"] < 1e-14]
    assert len(converged) >= 4
    assert converged["theta_abs_diff"].max() < 1e-14
    assert converged["error_final_abs_diff"].max() < 1e-14


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="unknown methods"):
        run_fig2(alphas=[0.6], methods=["EM"], **TINY)
    with pytest.raises(ValueError, match="estep"):
        run_fig2(alphas=[0.6], estep="fast", **TINY)
    with pytest.raises(ValueError, match="alphas"):
        run_fig2(alphas=[1.5], **TINY)


def test_plot_fig2_draws_the_authors_aggregates_on_linear_axes(tmp_path, saved_figures):
    from sinkhorn_em_repro.plotting.fig2 import plot_fig2

    runs = run_fig2(alphas=[0.6, 0.8, 0.9], **TINY)
    # One run without a qualifying iteration: left out of the mean, as the notebook's nanmean.
    runs.loc[0, "iters_to_converge"] = np.nan
    plot_fig2(runs, tmp_path / "fig2.pdf", panel_alphas=[0.78, 0.9])
    assert (tmp_path / "fig2.png").is_file()
    (figure,) = saved_figures
    axes = figure.axes
    assert [ax.get_yscale() for ax in axes] == ["linear"] * 5

    def line(ax, method):
        (found,) = [each for each in ax.get_lines() if each.get_label() == METHOD_LABELS[method]]
        return np.asarray(found.get_xdata(), float), np.asarray(found.get_ydata(), float)

    for method, rows in runs.groupby("method"):
        for ax, column in ((axes[0], "error_iter4"), (axes[1], "error_final")):
            # Worst theta0 per repetition, then the mean over repetitions, per alpha*.
            expected = [
                np.mean([group[group["rep"] == rep][column].max() for rep in sorted(set(group["rep"]))])
                for _, group in rows.groupby("alpha")
            ]
            x, y = line(ax, method)
            np.testing.assert_allclose(x, sorted(set(rows["alpha"])))
            np.testing.assert_allclose(y, expected, rtol=1e-14)
        first = rows[(rows["theta0"] == -2.0) & (rows["rep"] == 0)].sort_values("alpha")
        _, y = line(axes[2], method)
        theta = first["theta_final"].to_numpy()
        np.testing.assert_allclose(y, np.abs(theta) if method == "oEM" else theta)
        at = rows[np.isclose(rows["alpha"], 0.8)]
        x, y = line(axes[3], method)
        expected = [np.nanmean(at[at["theta0"] == t]["iters_to_converge"]) for t in sorted(set(at["theta0"]))]
        np.testing.assert_allclose(x, sorted(set(at["theta0"])))
        np.testing.assert_allclose(y, expected)
    assert "0.80" in axes[3].get_title()


@pytest.mark.pipeline
def test_tiny_pipeline_runs_both_esteps_and_they_agree(tiny_run_cores2):
    from sinkhorn_em_repro.pipeline import read_table

    tables = tiny_run_cores2.workdir / "results" / "tables"
    check = read_table(tables / "fig2_estep_check.csv")
    converged = check[check["sinkhorn_row_error_max"] < 1e-14]
    assert not converged.empty
    assert converged["theta_abs_diff"].max() < 1e-14
    runs = read_table(tables / "fig2_runs.csv")
    assert set(REQUIRED_COLUMNS) <= set(runs.columns)
    assert set(runs["method"]) == {"vEM", "oEM", "sEM"}
    assert runs[REQUIRED_COLUMNS].notna().all().all()
    assert runs["alpha"].max() == 1.0  # the grid includes alpha* = 1
