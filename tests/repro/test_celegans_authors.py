"""The authors' C. elegans protocol (experiments.celegans.authors) against their demo's numbers.

``tests/repro/data/celegans_reference.json`` holds one trial of the authors' demo
(github.com/amin-nejat/SinkhornEM at 7e90a5d, run outside this project with fixed seeds): the
voxels, the labels, the true centres, the shifted atlas, and per method its start, its train
mask, its identity accuracy after every iteration and its means after iterations 1, 2, 3, 5,
10, 20 and 30. Only numbers are stored, never the authors' code.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sinkhorn_em_repro.experiments.celegans import (
    AUTHORS,
    AuthorsPrior,
    NeuronScene,
    final_summary,
    fit_authors_protocol,
    identity_metrics,
    run_authors_chunk,
    simulate_authors_trial,
    summarise_celegans,
)
from sinkhorn_em_repro.experiments.celegans.authors import clipped_covariances, map_means, prior_log_density

REFERENCE = json.loads((Path(__file__).parent / "data" / "celegans_reference.json").read_text())
INPUTS = REFERENCE["inputs"]
X = np.frombuffer(base64.b64decode(INPUTS["X_float32_le_b64"]), "<f4").reshape(INPUTS["X_shape"]).astype(float)
PRIOR = AuthorsPrior(np.array(INPUTS["atlas_mu_shifted"]), np.array(INPUTS["atlas_sigma_KDD"]) / 10)
TRUE_POSITIONS = np.array(INPUTS["true_mu"])[:, :3]
K = 5


def _train_mask(init):
    packed = np.frombuffer(base64.b64decode(init["train_indices_packbits_b64"]), np.uint8)
    return np.unpackbits(packed)[: len(X)].astype(bool)


def _authors_run(start_kind, method, n_iter=30):
    init = REFERENCE[start_kind]["init"][method]
    start = (np.array(init["mu0"], dtype=float), np.tile(10 * np.eye(6), (K, 1, 1)), np.full(K, 1 / K))
    return fit_authors_protocol(method, X[_train_mask(init)], start, PRIOR, n_iter)


@pytest.mark.parametrize(
    ("start_kind", "method", "tolerance"),
    # The authors keep random starts in float32 through every update: ~1e-6 apart.
    [
        ("atlas_init", "vEM", 1e-7),
        ("atlas_init", "oEM", 1e-7),
        ("random_init", "vEM", 3e-6),
        ("random_init", "oEM", 3e-6),
    ],
)
def test_vem_and_oem_means_match_the_demo(start_kind, method, tolerance):
    states = _authors_run(start_kind, method)
    reference = REFERENCE[start_kind]["per_iteration"][method]
    for iteration, means in reference["mu_at_iteration"].items():
        np.testing.assert_allclose(states[int(iteration)]["means"], means, rtol=0, atol=tolerance)
    accuracy = [identity_metrics(TRUE_POSITIONS, s["means"][:, :3])["identity_accuracy_r1"] for s in states[1:]]
    assert accuracy == reference["acc_r1"]


def test_sem_from_the_atlas_matches_the_demo_up_to_its_truncated_sinkhorn():
    # The demo stops every balanced E-step after 1000 Sinkhorn iterations (column error ~0.009);
    # ours is solved to convergence: the means differ by at most 0.25 micrometres, the
    # identity accuracy of every iteration is the same.
    states = _authors_run("atlas_init", "sEM")
    reference = REFERENCE["atlas_init"]["per_iteration"]["sEM"]
    for iteration, means in reference["mu_at_iteration"].items():
        difference = np.abs(states[int(iteration)]["means"] - np.array(means)).max()
        assert 1e-3 < difference < 0.3
    accuracy = [identity_metrics(TRUE_POSITIONS, s["means"][:, :3])["identity_accuracy_r1"] for s in states[1:]]
    assert accuracy == reference["acc_r1"]


def test_map_means_solve_the_stationarity_equation():
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(K), size=200)
    data = rng.normal(size=(200, 6)) * 3 + 5
    covariances = np.stack([np.diag(rng.uniform(0.5, 2, 6)) for _ in range(K)])
    means = map_means(resp, data, covariances, PRIOR)
    for k in range(K):
        # d/dmu [sum_i g_i log N(x_i; mu, S) + log N(mu; m, P)] = S^-1 (s - n mu) + P^-1 (m - mu) = 0.
        s_inv, p_inv = np.linalg.inv(covariances[k]), np.linalg.inv(PRIOR.covariances[k])
        n, s = resp[:, k].sum(), resp[:, k] @ data
        expected = np.linalg.solve(n * s_inv + p_inv, s_inv @ s + p_inv @ PRIOR.means[k])
        np.testing.assert_allclose(means[k], expected, rtol=1e-10)


def test_clipped_covariances_zero_cross_blocks_and_clip_positions_only():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 6)) * np.array([0.1, 2.0, 1.0, 5.0, 3.0, 0.5])
    resp = rng.dirichlet(np.ones(2), size=300)
    means = np.zeros((2, 6))
    out = clipped_covariances(resp, data, means, (0.1, 1.1))
    for k in range(2):
        assert np.all(out[k, :3, 3:] == 0) and np.all(out[k, 3:, :3] == 0)
        positions = np.linalg.eigvalsh(out[k, :3, :3])
        assert positions.min() >= 0.1 - 1e-12 and positions.max() <= 1.1 + 1e-12
        w = resp[:, k] / resp[:, k].sum()
        np.testing.assert_allclose(out[k, 3:, 3:], (w * data[:, 3:].T) @ data[:, 3:], rtol=1e-12)
    flat = data.copy()
    flat[:, 5] = 0.0  # no spread in one colour: singular, as the demo's failing runs
    with pytest.raises(ValueError, match="singular"):
        clipped_covariances(resp, flat, means, (0.1, 1.1))


def test_prior_log_density_is_the_gaussian_log_density():
    from scipy.stats import multivariate_normal

    means = PRIOR.means + 0.3
    expected = [multivariate_normal(m, c).logpdf(x) for x, m, c in zip(means, PRIOR.means, PRIOR.covariances)]
    np.testing.assert_allclose(prior_log_density(means, PRIOR), expected, rtol=1e-12)


def test_identity_accuracy_does_not_match_components_and_is_strict():
    truth = np.array([[0.0, 0, 0], [10.0, 0, 0]])
    swapped = truth[::-1]
    assert identity_metrics(truth, swapped, radii=[1])["identity_accuracy_r1"] == 0.0
    on_the_radius = truth + np.array([[1.0, 0, 0], [0.5, 0, 0]])
    assert identity_metrics(truth, on_the_radius, radii=[1])["identity_accuracy_r1"] == 0.5


def _scene(n_voxels=400):
    centers = np.array(INPUTS["atlas_mu_shifted"])
    covariances = np.array(INPUTS["atlas_sigma_KDD"])
    counts = np.full(K, n_voxels // K)
    return NeuronScene("atlas_tail5", tuple("ABCDE"), centers, covariances, counts, centers.copy())


def test_simulated_trial_has_iid_labels_and_a_bernoulli_split():
    trial = simulate_authors_trial(_scene(5000), np.random.default_rng(3))
    counts = np.bincount(trial.labels, minlength=K)
    assert counts.sum() == 5000 and len(set(counts)) > 1  # Binomial counts, not fixed ones
    assert abs(trial.train.mean() - 0.5) < 0.03
    per_neuron = [trial.train[trial.labels == k].mean() for k in range(K)]
    assert len(set(np.round(per_neuron, 6))) > 1  # not stratified


def test_run_authors_chunk_shares_data_and_start_between_methods():
    tables = {
        method: run_authors_chunk(_scene(), method=method, trials=[0, 1], base_seed=5, n_iter=3)
        for method in ("vEM", "sEM")
    }
    for table in tables.values():
        assert set(table["protocol"]) == {AUTHORS}
        assert {"identity_accuracy_r1", "identity_accuracy_r3", "identity_position_error"} <= set(table.columns)
    starts = [t[t["iteration"] == 0].reset_index(drop=True) for t in tables.values()]
    pd.testing.assert_series_equal(starts[0]["identity_position_error"], starts[1]["identity_position_error"])
    summary = final_summary(summarise_celegans(pd.concat(tables.values(), ignore_index=True)))
    assert set(summary["protocol"]) == {AUTHORS} and "sd" in summary.columns
    assert set(summary["metric"]) >= {"identity_accuracy_r1", "accuracy_r1"}


def test_metrics_figure_shows_the_authors_protocol_with_its_identity_metrics(tmp_path, saved_figures):
    from matplotlib.colors import to_rgba

    from sinkhorn_em_repro.experiments.celegans import run_celegans_chunk
    from sinkhorn_em_repro.fitting import FitOptions
    from sinkhorn_em_repro.plotting.celegans import plot_celegans_metrics
    from sinkhorn_em_repro.plotting.style import method_color

    scene = _scene()
    runs = [
        run_authors_chunk(scene, method=m, trials=[0, 1], base_seed=5, n_iter=3, inits=["atlas"])
        for m in ("vEM", "sEM")
    ]
    options = FitOptions(covariance_type="spherical", tol=0.0, max_iter=3, sinkhorn_tol=1e-4)
    runs += [run_celegans_chunk(scene, method="sEM", trials=[0, 1], base_seed=5, options=options, inits=["atlas"])]
    summary = summarise_celegans(pd.concat(runs, ignore_index=True))
    plot_celegans_metrics(summary, tmp_path / "metrics.pdf")
    (figure,) = saved_figures
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles[0].startswith("atlas_tail5\n") and titles[1].startswith("atlas_tail5, authors' protocol")
    # Top row: accuracy within 1 micrometre; the authors' column draws the identity accuracy.
    authors_top = figure.axes[1]
    expected = summary[(summary["protocol"] == AUTHORS) & (summary["metric"] == "identity_accuracy_r1")]
    for method, rows in expected.groupby("method"):
        (line,) = [c for c in authors_top.get_lines() if to_rgba(c.get_color()) == to_rgba(method_color(method))]
        np.testing.assert_allclose(line.get_ydata(), rows.sort_values("iteration")["mean"])
