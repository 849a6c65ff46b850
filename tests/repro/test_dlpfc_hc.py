"""The hc start (mclust's hierarchical partition) in the spatial-domain family: config, tiny run, claim 9."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from repro_support import DEFAULT_PROFILE, run_snakemake
from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.fits import hc_partitions, run_dlpfc_chunk
from sinkhorn_em_repro.experiments.dlpfc.plan import plan_studies
from sinkhorn_em_repro.experiments.report.comparison_claims import (
    claim_known_proportions,
    claim_spatial_domains,
    claims_spatial_domains,
)
from sinkhorn_em_repro.fitting import FitOptions, fit_table_method
from test_dlpfc import blob_features

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"]["dlpfc"]
DEFAULT = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


# ----------------------------------------------------------------------------- config
def _errors(section: dict) -> list[str]:
    return [error.message for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(section)]


def test_schema_accepts_the_starts_and_rejects_bad_values_clearly():
    assert _errors(DEFAULT["dlpfc"]) == []
    assert _errors({"starts": ["kmeans++"], "hc": {"model": "EEE", "subset": 2000}}) == []
    assert any("'ward' is not one of ['kmeans++', 'hc']" in e for e in _errors({"starts": ["kmeans++", "ward"]}))
    assert any("'XXX' is not one of" in e for e in _errors({"hc": {"model": "XXX"}}))
    assert any("less than the minimum of 2" in e for e in _errors({"hc": {"subset": 1}}))
    assert any("'median' is not one of" in e for e in _errors({"claim": {"start": "median"}}))


def test_plan_runs_the_hc_start_once_unless_the_tree_uses_subsets():
    keys = DEFAULT["datasets"]["files"]
    section = dict(DEFAULT["dlpfc"])
    section.update(
        layers_dataset="dlpfc_layers",
        mob={**section["mob"], "dataset": "mob"},
        claim={"start": "hc"},
    )
    plan = plan_studies(section, keys)["dlpfc"]
    assert plan.starts == ("kmeans++", "hc") and plan.hc_seeds == [0]
    subsets = plan_studies({**section, "hc": {"model": "VVV", "subset": 2000}}, keys)["dlpfc"]
    assert subsets.hc_seeds == list(range(section["n_seeds"]))
    with pytest.raises(ValueError, match="claim.start 'hc' must be among starts"):
        plan_studies({**section, "starts": ["kmeans++"]}, keys)
    # The maps refit a k-means++ seed: the plan (run before any job) names the fix.
    with pytest.raises(ValueError, match=r"lacks kmeans\+\+.*add kmeans\+\+ to starts"):
        plan_studies({**section, "starts": ["hc"]}, keys)


# ----------------------------------------------------------------------------- fits from the hc start
def _blobs() -> SpotFeatures:
    """Three overlapping blobs as spot features (soft responsibilities: the start matters); adjacent = blob sizes."""
    return blob_features(separation=2.5)


@pytest.mark.parametrize("method", ["vEM", "oEM", "sEM", "sklearn"])
def test_chunk_fits_the_hc_start_with_the_options_record(method):
    features = _blobs()
    partitions = hc_partitions(features, sample="toy", feature_set="smoothed", seed_indices=[0], base_seed=3)
    options = FitOptions(covariance_type="tied", tol=0.0, max_iter=2, reg_covar=0.05)
    table = run_dlpfc_chunk(
        features,
        sample="toy",
        feature_set="smoothed",
        weights="adjacent",
        method=method,
        seed_indices=[0, 1],
        base_seed=3,
        options=options,
        starts=("kmeans++", "hc"),
        hc_partitions=partitions,
    )
    assert list(table["start"]) == ["kmeans++", "kmeans++", "hc"] and table["seed"].iloc[-1] == -1
    hc = table.iloc[-1]
    # The record reaches the hc fit: tol 0 runs exactly max_iter iterations.
    assert hc["n_iter"] == options.max_iter
    # Reference start built by hand from the partition: cluster means, pooled scatter + reg_covar, weights by size.
    labels = partitions.sort_values("spot")["label"].to_numpy()
    X = features.X
    means = np.stack([X[labels == k].mean(axis=0) for k in range(3)])
    centred = X - means[labels]
    tied = centred.T @ centred / X.shape[0] + options.reg_covar * np.eye(3)
    sizes = np.bincount(labels, minlength=3)
    weights = np.empty(3)
    weights[np.argsort(-sizes)] = np.sort(features.adjacent)[::-1]
    reference = fit_table_method(
        method, X, weights=weights, means_init=means, covariances_init=tied, options=options
    ).model
    np.testing.assert_allclose(hc["mean_loglik"], reference.score(X), rtol=1e-9)
    with pytest.raises(ValueError, match="needs hc_partitions"):
        run_dlpfc_chunk(
            features,
            sample="toy",
            feature_set="smoothed",
            weights="adjacent",
            method=method,
            seed_indices=[0],
            base_seed=3,
            options=options,
            starts=("hc",),
        )


# ----------------------------------------------------------------------------- claim 9 statistics
SLICES = ("151673", "151674", "151675", "151676")
# Large differences between slices, small and consistent differences between methods within a
# slice: only a test paired by slice sees the methods apart.
SLICE_EFFECT = dict(zip(SLICES, (0.25, 0.60, 0.35, 0.50)))
GAIN = dict(zip(SLICES, (0.030, 0.034, 0.028, 0.032)))


def _hc_table(known_gain: float, gains: dict = GAIN) -> pd.DataFrame:
    rows = []
    for sample in SLICES:
        base = SLICE_EFFECT[sample]
        values = {
            ("oEM", "adjacent"): base,
            ("sklearn", "adjacent"): base,
            ("vEM", "adjacent"): base + known_gain * gains[sample] / 0.03,
            ("vEM", "oracle"): base + known_gain * gains[sample] / 0.03 + 0.001,
            ("sEM", "adjacent"): base + 2 * known_gain * gains[sample] / 0.03,
            ("sEM", "oracle"): base + 2 * known_gain * gains[sample] / 0.03 + 0.002,
        }
        for (method, weights), ari in values.items():
            common = {"slice": sample, "features": "smoothed", "covariance_type": "tied", "method": method}
            rows.append({**common, "weights": weights, "start": "hc", "seed_index": 0, "ari": ari})
            for seed in range(3):  # k-means++ rows, far worse: must not enter the hc comparison
                rows.append({**common, "weights": weights, "start": "kmeans++", "seed_index": seed, "ari": 0.1})
    return pd.DataFrame(rows)


def test_known_proportions_claim_pairs_by_slice_and_can_fail():
    table = _hc_table(0.03)
    claim = claim_known_proportions(table)
    assert claim.verdict == "reproduced", claim.measured
    row = claim.details.set_index(["method", "weights"]).loc[("vEM", "adjacent")]
    hc = table[table["start"] == "hc"].pivot(index="slice", columns=["method", "weights"], values="ari")
    known, free = hc[("vEM", "adjacent")], hc[("oEM", "adjacent")]
    reference = stats.ttest_rel(known, free)
    np.testing.assert_allclose(row["diff_mean"], (known - free).mean(), rtol=1e-12)
    np.testing.assert_allclose(row["p_value"], reference.pvalue, rtol=1e-10)
    interval = reference.confidence_interval(0.95)
    np.testing.assert_allclose([row["diff_low"], row["diff_high"]], [interval.low, interval.high], rtol=1e-10)
    assert row["n_slices"] == 4
    # Unpaired, the slice effects swamp the gain: a test that lost the pairing would not pass.
    assert stats.ttest_ind(known, free).pvalue > 0.5
    assert claim_known_proportions(_hc_table(-0.03)).verdict == "contradicted"
    mixed = dict(zip(SLICES, (0.030, -0.034, 0.028, -0.026)))  # as often behind as ahead
    assert claim_known_proportions(_hc_table(0.03, mixed)).verdict == "not reproduced"
    # Slices shuffled within one method break the pairing: the verdict no longer holds.
    broken = table.copy()
    chosen = (broken["method"] == "vEM") & (broken["start"] == "hc")
    broken.loc[chosen, "slice"] = broken.loc[chosen, "slice"].map(dict(zip(SLICES, SLICES[1:] + SLICES[:1])))
    shuffled = claim_known_proportions(broken).details.set_index(["method", "weights"]).loc[("vEM", "adjacent")]
    assert shuffled["p_holm"] > 0.05


def test_claim_nine_from_the_hc_start_compares_across_slices():
    table = _hc_table(0.03)
    claim = claim_spatial_domains(table, start="hc")
    assert claim.verdict == "reproduced", claim.measured  # sEM = oEM + 2 gains, vEM + 1 gain
    assert set(claim.details["n_pairs"]) == {4} and "hc" in claim.criterion
    # The criterion is rendered text (Holm's rule spelled out), not a template.
    assert "{" not in claim.criterion and "Holm's step-down correction" in claim.criterion
    assert any("sklearn from the hc start" in line and "vs k-means++ start 0.100" in line for line in claim.measured)
    parts = claims_spatial_domains(table, start="hc")
    assert [c.label for c in parts] == ["9a", "9b"]
    # A table without hc rows keeps the single claim 9 of the seeded starts.
    seeded = table[table["start"] == "kmeans++"].drop(columns="start")
    assert [c.label for c in claims_spatial_domains(seeded)] == ["9"]


# ----------------------------------------------------------------------------- tiny pipeline run
def _assert_every_method_fits_from_the_hc_start(workdir, subset):
    config = yaml.safe_load((workdir / "tests" / "config" / "config.yaml").read_text())["dlpfc"]
    # With every spot the tree is deterministic: one fit per setting, seed index 0, no seed.
    # On a random subset of spots each seed draws its own subset: n_seeds fits per setting.
    hc_fits = 1 if subset is None else config["n_seeds"]
    for name, samples in (("dlpfc", config["slices"]), ("mob", ["mOB"])):
        table = pd.read_csv(workdir / "results" / "tables" / f"{name}.csv", dtype={"slice": str})
        for sample in samples:
            rows = table[table["slice"] == sample]
            hc = rows[rows["start"] == "hc"]
            kmeans = rows[rows["start"] == "kmeans++"]
            assert set(hc["method"]) == {"vEM", "oEM", "sEM", "sklearn"}, rows[["method", "start"]]
            settings = ["features", "covariance_type", "weights", "method"]
            assert (hc.groupby(settings)["seed_index"].nunique() == hc_fits).all()
            assert not hc.duplicated([*settings, "seed_index"]).any()
            if subset is None:
                assert (hc["seed_index"] == 0).all() and (hc["seed"] == -1).all()
            else:
                assert (hc["seed"] != -1).all() and hc.groupby("seed_index")["seed"].nunique().eq(1).all()
                assert hc["seed"].nunique() == hc_fits  # each seed its own subset
            assert len(kmeans) == config["n_seeds"] * len(hc) // hc_fits
            assert hc["ari"].between(-0.5, 1.0).all() and np.isfinite(hc["mean_loglik"]).all()
            # Every method starts from the same partition: tied oEM and scikit-learn reach the same fit.
            tied = hc[(hc["covariance_type"] == "tied") & hc["method"].isin(["oEM", "sklearn"])]
            for _, pair in tied.groupby("seed_index"):
                np.testing.assert_allclose(pair["mean_loglik"].iloc[0], pair["mean_loglik"].iloc[1], rtol=1e-4)
    summary = pd.read_csv(workdir / "results" / "tables" / "dlpfc_summary.csv")
    hc_rows = summary["start"] == "hc"
    assert set(summary["start"]) == {"kmeans++", "hc"} and (summary.loc[hc_rows, "n_seeds"] == hc_fits).all()


@pytest.mark.pipeline
def test_tiny_run_fits_every_method_from_the_hc_start(tiny_run_cores2):
    # The tiny config keeps the default's starts (kmeans++ and hc, the tree on every spot):
    # the shared tiny run made these tables.
    _assert_every_method_fits_from_the_hc_start(tiny_run_cores2.workdir, subset=None)


@pytest.mark.pipeline
def test_tiny_run_with_an_hc_subset_fits_each_seed_from_its_own_tree(
    make_repository_copy, tiny_configfile_args, tmp_path
):
    workdir = make_repository_copy("hc_subset")
    override = tmp_path / "hc.yaml"
    override.write_text(yaml.safe_dump({"dlpfc": {"hc": {"model": "VVV", "subset": 400}}}))
    targets = ["results/tables/dlpfc.csv", "results/tables/dlpfc_summary.csv", "results/tables/mob.csv"]
    run = run_snakemake(
        workdir, *targets, "--workflow-profile", DEFAULT_PROFILE, "--cores", "2", *tiny_configfile_args, str(override)
    )
    run.assert_ok()
    _assert_every_method_fits_from_the_hc_start(workdir, subset=400)
