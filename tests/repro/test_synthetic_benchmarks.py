"""Synthetic benchmarks: dataset specs from the config, requested weights/separation, seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from sinkhorn_em.synthetic import make_mixture, symmetric_mixture
from sinkhorn_em_repro.experiments.synthetic import (
    WEIGHT_SCHEMES,
    benchmark_seed,
    benchmark_specs,
    build_benchmark,
    min_mean_distance,
    scheme_weights,
)

SECTION = {
    "symmetric": {"n": 400, "theta_star": 1.5, "alphas": [0.6, 0.9], "replicates": 2},
    "mixtures": {
        "n": 3000,
        "n_components": [3, 5],
        "dims": [1, 3],
        "separations": [2.0, 4.5],
        "weight_schemes": ["uniform", "geometric"],
        "std": 0.5,
        "replicates": 1,
        "custom": [{"name": "k3", "n": 3000, "weights": [0.5, 0.3, 0.2], "dim": 2, "separation": 3.0}],
    },
}


@pytest.fixture(scope="module")
def specs():
    return benchmark_specs(SECTION)


@pytest.fixture(scope="module")
def benchmarks(specs):
    return {name: build_benchmark(name, spec, base_seed=5) for name, spec in specs.items()}


def test_specs_expand_the_config_grid(specs):
    grid = SECTION["mixtures"]
    n_grid = np.prod([len(grid[k]) for k in ("n_components", "dims", "separations", "weight_schemes")])
    assert len(specs) == 2 * 2 + n_grid + 1
    kinds = [spec["kind"] for spec in specs.values()]
    assert kinds.count("symmetric") == 4
    combos = {
        (len(s["weights"]), s["dim"], s["separation"], s["weight_scheme"])
        for s in specs.values()
        if s["kind"] == "mixture" and s["weight_scheme"] != "custom"
    }
    assert combos == set(itertools.product([3, 5], [1, 3], [2.0, 4.5], ["uniform", "geometric"]))
    assert "mixture_k3_rep0" in specs


def test_specs_reject_bad_custom_datasets():
    bad_weights = {"mixtures": {"custom": [{"name": "x", "n": 10, "weights": [0.5, 0.6], "dim": 1, "separation": 1}]}}
    with pytest.raises(ValueError, match="sum to 1"):
        benchmark_specs(bad_weights)
    twice = {"name": "x", "n": 10, "weights": [0.5, 0.5], "dim": 1, "separation": 1}
    with pytest.raises(ValueError, match="Duplicate"):
        benchmark_specs({"mixtures": {"custom": [twice, twice]}})
    with pytest.raises(ValueError, match="smaller than the number of components"):
        benchmark_specs({"mixtures": {"custom": [{**twice, "n": 1}]}})


@pytest.mark.parametrize("scheme", WEIGHT_SCHEMES)
def test_scheme_weights_are_distributions(scheme):
    weights = scheme_weights(scheme, 4)
    assert weights.shape == (4,) and weights.sum() == pytest.approx(1.0)
    assert np.all(np.diff(weights) <= 0) and weights.min() > 0
    assert (np.ptp(weights) == 0) == (scheme == "uniform")


def test_unknown_scheme_is_rejected():
    with pytest.raises(ValueError, match="weight scheme"):
        scheme_weights("zipf", 3)


def test_generated_data_have_the_requested_weights_and_separation(specs, benchmarks):
    for name, spec in specs.items():
        sample, row = benchmarks[name].sample, benchmarks[name].manifest.iloc[0]
        if spec["kind"] == "symmetric":
            requested_weights = np.array([spec["alpha"], 1 - spec["alpha"]])
            np.testing.assert_allclose(sample.means[:, 0], [spec["theta_star"], -spec["theta_star"]])
            std, separation = 1.0, 2 * spec["theta_star"]
        else:
            requested_weights = np.array(spec["weights"])
            std, separation = spec["std"], spec["separation"]
        np.testing.assert_allclose(sample.weights, requested_weights)
        # The closest two means are exactly `separation` standard deviations apart.
        assert min_mean_distance(sample.means) / std == pytest.approx(separation, rel=1e-12)
        assert row["realised_separation"] == pytest.approx(separation, rel=1e-12)
        # Label frequencies: within 5 binomial standard deviations of the weights.
        n = sample.X.shape[0]
        freq = np.bincount(sample.labels, minlength=requested_weights.size) / n
        assert np.all(np.abs(freq - requested_weights) <= 5 * np.sqrt(requested_weights * (1 - requested_weights) / n))
        # Within-component spread is the requested std (checked on the largest component).
        big = np.argmax(requested_weights)
        residual = sample.X[sample.labels == big] - sample.means[big]
        assert residual.std() == pytest.approx(std, rel=0.1)
        assert row["n"] == spec["n"] and row["dim"] == sample.X.shape[1]


def test_datasets_are_reproducible_from_their_seed(specs, benchmarks):
    for name in ("symmetric_theta1.5_alpha0.9_n400_rep1", "mixture_K5_d3_sep4.5_geometric_n3000_rep0"):
        spec, bench = specs[name], benchmarks[name]
        seed = int(bench.manifest["seed"].iloc[0])
        assert seed == bench.seed == benchmark_seed(spec, 5)
        # The generator alone, fed the recorded seed, redraws the same data.
        rng = np.random.default_rng(seed)
        if spec["kind"] == "symmetric":
            again = symmetric_mixture(spec["n"], spec["theta_star"], spec["alpha"], rng)
        else:
            again = make_mixture(spec["n"], spec["weights"], spec["dim"], spec["separation"], rng, std=spec["std"])
        np.testing.assert_array_equal(again.X, bench.sample.X)
        np.testing.assert_array_equal(again.labels, bench.sample.labels)
        rebuilt = build_benchmark(name, spec, base_seed=5)
        pd.testing.assert_frame_equal(rebuilt.manifest, bench.manifest)


def test_seeds_differ_between_settings_replicates_and_base_seeds(specs, benchmarks):
    seeds = [b.seed for b in benchmarks.values()]
    assert len(set(seeds)) == len(seeds)
    hashes = {b.manifest["x_sha256"].iloc[0] for b in benchmarks.values()}
    assert len(hashes) == len(benchmarks)
    name = "symmetric_theta1.5_alpha0.6_n400_rep0"
    assert build_benchmark(name, specs[name], base_seed=6).seed != benchmarks[name].seed


def test_arrays_hold_everything_needed(benchmarks):
    bench = next(iter(benchmarks.values()))
    arrays = bench.arrays()
    assert set(arrays) == {"X", "labels", "weights", "means", "covariances", "seed"}
    assert int(arrays["seed"]) == bench.seed


@pytest.mark.pipeline
def test_tiny_run_datasets_match_manifest(tiny_run_cores2):
    import hashlib

    directory = tiny_run_cores2.workdir / "results" / "synthetic"
    manifest = pd.read_csv(directory / "manifest.csv")
    assert len(manifest) >= 2
    for row in manifest.itertuples():
        with np.load(directory / f"{row.name}.npz") as data:
            assert int(data["seed"]) == row.seed
            assert hashlib.sha256(np.ascontiguousarray(data["X"], dtype="<f8").tobytes()).hexdigest() == row.x_sha256
            assert min_mean_distance(data["means"]) / row.std == pytest.approx(row.separation)
