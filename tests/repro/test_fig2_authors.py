"""Figure 2 against numbers computed by running the authors' code (tests/repro/data/fig2_reference.json).

The fixture holds the output of ``lib_neurips.py`` and the cells of ``Fig2_NeuRIPS.ipynb``
(github.com/gomena/SinkhornEM_Public, commit 16ec04e), run outside this project on one fixed
noise vector (n = 200, float64) at alpha* in {0.6, 0.78, 0.9, 1.0} and theta0 in {-2, -0.4, 0.5}:
every mean of 30 iterations, oEM's weight used at each iteration, the notebook's squared-W2
errors and its iteration counts, on 30-iteration runs and on runs of the authors' lengths
(200 vEM and oEM iterations, 25 sEM). Only numbers are stored, never the authors' code.
The authors' sEM returns NaN at alpha* = 1 (log 0); those runs are null in the fixture and skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sinkhorn_em_repro.experiments.fig2 import (
    FIG2_OEM_WEIGHT_UPDATE,
    fig2_sample,
    iterate_errors,
    run_alpha,
)
from sinkhorn_em_repro.symmetric import run_symmetric

REFERENCE = json.loads((Path(__file__).parent / "data" / "fig2_reference.json").read_text())
NOISE = np.asarray(REFERENCE["noise"], dtype=float)
N_ITER = REFERENCE["settings"]["vEM_oEM_sEM_iterations_trajectory"]
FINITE_RUNS = [run for run in REFERENCE["runs"] if run["theta"][0] is not None]
SWEEPS = REFERENCE["settings"]["sinkhorn_sweeps_per_estep"]


def _id(run):
    return f"{run['method']}-a{run['alpha']}-t{run['theta0']}"


def _trajectory(run, estep="exact"):
    x = fig2_sample(NOISE, run["alpha"])
    return run_symmetric(
        x,
        [run["theta0"]],
        run["alpha"],
        run["method"],
        N_ITER,
        estep=estep,
        n_sweeps=SWEEPS,
        oem_weight_update=FIG2_OEM_WEIGHT_UPDATE,
    )


def test_fixture_is_the_documented_input():
    assert len(NOISE) == REFERENCE["settings"]["n"] == 200
    assert len(FINITE_RUNS) == 33  # 36 runs, less sEM at alpha* = 1 (NaN in the authors' code)
    assert all(run["alpha"] == 1.0 and run["method"] == "sEM" for run in REFERENCE["runs"] if run["theta"][0] is None)


@pytest.mark.parametrize("run", REFERENCE["runs"], ids=_id)
def test_sample_rule_is_the_notebooks_int_of_n_alpha(run):
    shift = fig2_sample(NOISE, run["alpha"]) - NOISE
    positive = np.flatnonzero(shift > 0)
    np.testing.assert_array_equal(positive, np.arange(run["n_positive"]))


@pytest.mark.parametrize("run", FINITE_RUNS, ids=_id)
def test_means_weights_and_errors_of_every_iteration_match_the_authors(run):
    trajectory = _trajectory(run)
    np.testing.assert_allclose(trajectory.theta[1:, 0], run["theta"], rtol=0, atol=1e-12)
    if run["method"] == "oEM":
        # The weight each E-step used: w_0 = alpha*, then one update per iteration.
        np.testing.assert_allclose(trajectory.weight[:-1, 0], run["weight_used"], rtol=0, atol=1e-12)
    errors = iterate_errors(trajectory, run["method"], run["alpha"])[:, 0]
    np.testing.assert_allclose(errors, run["w2_squared"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("run", [r for r in FINITE_RUNS if r["method"] == "sEM"], ids=_id)
def test_sinkhorn_sweep_estep_matches_the_authors(run):
    trajectory = _trajectory(run, estep="sinkhorn")
    np.testing.assert_allclose(trajectory.theta[1:, 0], run["theta"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("run", FINITE_RUNS, ids=_id)
def test_table_row_of_a_30_iteration_run_matches_the_authors(run):
    row = run_alpha(NOISE, run["alpha"], [run["theta0"]], run["method"], N_ITER).iloc[0]
    assert row["theta_final"] == pytest.approx(run["theta"][-1], abs=1e-12)
    assert row["error_final"] == pytest.approx(run["w2_squared"][-1], abs=1e-12)
    assert row["error_iter4"] == pytest.approx(run["w2_squared"][3], abs=1e-12)
    assert row["iters_to_converge"] == run["iters_to_converge_30"]
    if run["method"] == "oEM":
        assert row["weight_final"] == pytest.approx(run["weight_used"][-1], abs=1e-12)


@pytest.mark.parametrize("run", FINITE_RUNS, ids=_id)
def test_iteration_counts_of_the_authors_run_lengths(run):
    row = run_alpha(NOISE, run["alpha"], [run["theta0"]], run["method"], run["authors_n_iter"]).iloc[0]
    assert row["theta_final"] == pytest.approx(run["theta_final_authors_length"], abs=1e-9)
    assert row["error_final"] == pytest.approx(run["w2_squared_final_authors_length"], abs=1e-9)
    assert row["iters_to_converge"] == run["iters_to_converge_authors"]
