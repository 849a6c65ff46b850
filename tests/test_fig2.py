"""Figure 2 experiment (sinkhorn_em_repro.experiments.fig2) and its figure on tiny grids."""

from __future__ import annotations

import warnings

import numpy as np
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
from sinkhorn_em_repro.symmetric import symmetric_w2_squared

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


def test_sample_shifts_the_first_floor_n_alpha_points():
    noise = fig2_noise(1, 1000, rep=0)
    for alpha, n_positive in [(0.57, 570), (0.78, 780), (0.5, 500), (1.0, 1000), (0.123, 123)]:
        x = fig2_sample(noise, alpha)
        shift = x - noise
        np.testing.assert_allclose(shift[:n_positive], 1.0)
        np.testing.assert_allclose(shift[n_positive:], -1.0)


def test_noise_depends_on_repetition_only():
    np.testing.assert_array_equal(fig2_noise(5, 100, 2), fig2_noise(5, 100, 2))
    assert not np.array_equal(fig2_noise(5, 100, 2), fig2_noise(5, 100, 3))


def test_iterations_to_converge_is_the_first_iterate_within_the_factor():
    errors = np.array([[1.0, 5.0, 0.0], [0.4, 5.0, 0.0], [0.16, 5.0, 0.0], [0.11, 5.0, 0.0], [0.1, 5.0, 0.0]])
    np.testing.assert_array_equal(iterations_to_converge(errors, 1.5), [3, 0, 0])


def test_run_fig2_has_one_row_per_setting_and_no_nan_even_at_alpha_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = run_fig2(alphas=[0.5, 0.8, 1.0], **TINY)
    assert list(runs.columns[:5]) == REQUIRED_COLUMNS[:5]
    assert set(REQUIRED_COLUMNS) <= set(runs.columns)
    assert len(runs) == 3 * 3 * 3 * 2
    assert not runs.duplicated(["method", "alpha", "theta0", "rep"]).any()
    assert runs[REQUIRED_COLUMNS].notna().all().all()
    # The error is the squared W2 with the model's weights: alpha* for vEM and sEM,
    # the estimate for oEM.
    expected = symmetric_w2_squared(runs["theta_final"], runs["weight_final"], 1.0, runs["alpha"])
    np.testing.assert_allclose(runs["error_final"], expected, rtol=0, atol=1e-15)
    fixed = runs[runs["method"] != "oEM"]
    np.testing.assert_array_equal(fixed["weight_final"], fixed["alpha"])
    assert (runs["iters_to_converge"] <= runs["n_iter"]).all()


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
    converged = check[check["sinkhorn_row_error_max"] < 1e-9]
    assert len(converged) >= 4
    assert converged["theta_abs_diff"].max() < 1e-6
    assert converged["error_final_abs_diff"].max() < 1e-6


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="unknown methods"):
        run_fig2(alphas=[0.6], methods=["EM"], **TINY)
    with pytest.raises(ValueError, match="estep"):
        run_fig2(alphas=[0.6], estep="fast", **TINY)
    with pytest.raises(ValueError, match="alphas"):
        run_fig2(alphas=[1.5], **TINY)


def test_plot_fig2_writes_pdf_and_png(tmp_path):
    from sinkhorn_em_repro.plotting.fig2 import plot_fig2, worst_case_over_theta0

    runs = run_fig2(alphas=[0.6, 0.8, 0.9], **TINY)
    worst = worst_case_over_theta0(runs, "error_final")
    manual = runs.groupby(["method", "alpha", "rep"])["error_final"].max().groupby(["method", "alpha"]).mean()
    np.testing.assert_allclose(worst.set_index(["method", "alpha"])["error_final"], manual.to_numpy())
    plot_fig2(runs, tmp_path / "fig2.pdf", panel_alphas=[0.78, 0.9])
    assert (tmp_path / "fig2.pdf").stat().st_size > 0
    assert (tmp_path / "fig2.png").stat().st_size > 0


@pytest.mark.pipeline
def test_tiny_pipeline_runs_both_esteps_and_they_agree(tiny_run_cores2):
    from sinkhorn_em_repro.pipeline import read_table

    tables = tiny_run_cores2.workdir / "results" / "tables"
    check = read_table(tables / "fig2_estep_check.csv")
    converged = check[check["sinkhorn_row_error_max"] < 1e-9]
    assert not converged.empty
    assert converged["theta_abs_diff"].max() < 1e-6
    runs = read_table(tables / "fig2_runs.csv")
    assert set(REQUIRED_COLUMNS) <= set(runs.columns)
    assert set(runs["method"]) == {"vEM", "oEM", "sEM"}
    assert runs[REQUIRED_COLUMNS].notna().all().all()
    assert runs["alpha"].max() == 1.0  # the grid includes alpha* = 1
