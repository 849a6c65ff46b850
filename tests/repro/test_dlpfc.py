"""Spatial domains (DLPFC Visium, mouse olfactory bulb): loaders, features, weights, fits, tables, claim, figures."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from scipy.stats import t as student_t

from sinkhorn_em_repro.datasets import ChecksumMismatchError, DatasetFetchError, fetch
from sinkhorn_em_repro.datasets.dlpfc import (
    DLPFC_LAYERS,
    UNLABELLED,
    attach_annotation,
    layer_proportions,
    load_dlpfc_slice,
    load_mob,
    read_dlpfc_counts,
    read_layer_map,
)
from sinkhorn_em_repro.experiments.dlpfc.features import (
    SpotFeatures,
    build_spot_features,
    grid_adjacency,
    neighbour_mean,
)
from sinkhorn_em_repro.experiments.dlpfc.fits import (
    fit_settings,
    run_dlpfc_chunk,
    score_labels,
    seed_start,
    setting_weights,
)
from sinkhorn_em_repro.experiments.dlpfc.mclust import INSTALL_R_HINT, eee_mean_loglik, mclust_inputs, score_mclust
from sinkhorn_em_repro.experiments.dlpfc.plan import plan_studies
from sinkhorn_em_repro.experiments.dlpfc.summary import best_seed_maps, combine_per_seed, summarise_dlpfc
from sinkhorn_em_repro.experiments.report.comparison_claims import claim_spatial_domains, paired_differences
from sinkhorn_em_repro.fitting import FitOptions, fit_table_method
from sinkhorn_em_repro.pipeline import read_table, write_table
from sinkhorn_em_repro.plotting.dlpfc import plot_spatial_ari, plot_spatial_map

REPO_ROOT = Path(__file__).resolve().parents[2]
DLPFC_DIR = "spatial/dlpfc"
COUNTS_151673 = f"{DLPFC_DIR}/dlpfc151673.rda"
POSITIONS_151673 = f"{DLPFC_DIR}/positions/151673_tissue_positions_list.txt"
LAYER_MAP = f"{DLPFC_DIR}/barcode_level_layer_map.tsv"
MOB = "spatial/mOB.rda"
CONTRACT_COLUMNS = ["slice", "features", "covariance_type", "weights", "method", "seed"]
FAST = {"tol": 1e-4, "max_iter": 60, "sinkhorn_tol": 1e-6}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mirror(mirror_dir) -> Path:
    if mirror_dir is None or not (mirror_dir / COUNTS_151673).is_file():
        pytest.skip(f"the DLPFC files are not in the dataset mirror ({COUNTS_151673}); set SINKHORN_EM_MIRROR")
    return mirror_dir


@pytest.fixture(scope="module")
def layer_map(mirror):
    return read_layer_map(mirror / LAYER_MAP)


@pytest.fixture(scope="module")
def counts_151673(mirror):
    return read_dlpfc_counts(mirror / COUNTS_151673)


@pytest.fixture(scope="module")
def slice_151673(mirror, layer_map, counts_151673):
    return load_dlpfc_slice(
        mirror / COUNTS_151673, mirror / POSITIONS_151673, layer_map, "151673", counts=counts_151673
    )


def blob_features(sizes=(200, 120, 80), separation=8.0, seed=0, unlabelled=0) -> SpotFeatures:
    """Well-separated Gaussian blobs dressed as spot features (3 layers); the last ``unlabelled`` spots lose their label."""
    rng = np.random.default_rng(seed)
    layer = np.repeat(np.arange(3), sizes)
    X = separation * np.eye(3)[layer] + rng.normal(size=(layer.size, 3))
    if unlabelled:
        layer = layer.copy()
        layer[-unlabelled:] = -1
    return SpotFeatures(
        X=X,
        layer=layer,
        layer_names=np.array(["L1", "L2", "WM"]),
        x=X[:, 0],
        y=X[:, 1],
        adjacent=np.array([0.5, 0.3, 0.2]),
    )


# ----------------------------------------------------------------------------- loaders (real files)
def test_slice_151673_matches_the_published_counts_and_annotation(slice_151673):
    sample = slice_151673
    assert (sample.n_spots, sample.n_genes) == (3639, 5000)
    assert np.count_nonzero(sample.counts) == 2_396_621
    assert int(sample.labelled.sum()) == 3611
    layers, counts = np.unique(sample.layer[sample.labelled], return_counts=True)
    assert dict(zip(layers, counts.tolist())) == {
        "L1": 273,
        "L2": 253,
        "L3": 989,
        "L4": 218,
        "L5": 673,
        "L6": 692,
        "WM": 513,
    }
    assert sample.grid == "hex" and (sample.grid_row + sample.grid_col).__mod__(2).max() == 0  # Visium parity


def test_mouse_olfactory_bulb_matches_the_published_facts(mirror):
    sample = load_mob(mirror / MOB)
    assert sample.n_spots == 262 and sample.n_genes == 15928
    assert int(sample.labelled.sum()) == 260
    assert len(set(sample.layer[sample.labelled])) == 5
    assert sample.grid == "square"
    # Positions were matched by barcode (upstream lists them in another order than the counts).
    assert len(set(zip(sample.grid_row, sample.grid_col))) == 262


def test_adjacent_slices_have_all_seven_layers(layer_map):
    for slice_id in ("151673", "151674", "151675", "151676"):
        proportions = layer_proportions(layer_map, slice_id)
        assert proportions.shape == (7,) and np.isclose(proportions.sum(), 1.0) and (proportions > 0).all()
    rows = layer_map[layer_map["slice"] == "151674"]
    np.testing.assert_allclose(layer_proportions(layer_map, "151674")[0], (rows["layer"] == "L1").mean())
    with pytest.raises(ValueError, match="no spot of slice '999'"):
        layer_proportions(layer_map, "999")


def test_annotation_barcodes_missing_from_the_counts_are_reported(mirror, layer_map, counts_151673, caplog):
    renamed = layer_map.copy()
    own = np.flatnonzero(renamed["slice"].to_numpy() == "151673")[:4]
    renamed.loc[own, "barcode"] = [f"NOTASPOT{i}-1" for i in range(4)]
    with caplog.at_level(logging.WARNING):
        sample = load_dlpfc_slice(
            mirror / COUNTS_151673, mirror / POSITIONS_151673, renamed, "151673", counts=counts_151673
        )
    text = caplog.text
    assert "4 of 3611 annotated barcodes are not among the counted spots" in text and "NOTASPOT0-1" in text
    # The four renamed spots lost their annotation (32 unlabelled instead of 28) and are reported too.
    assert "32 of 3639 counted spots have no annotation" in text
    assert int(sample.labelled.sum()) == 3607


def test_annotation_matches_by_name_and_refuses_a_foreign_annotation(caplog):
    barcodes = np.array(["A-1", "B-1", "C-1", "D-1"])
    annotation = pd.Series({"D-1": "L2", "B-1": "L1", "Z-1": "WM"})
    with caplog.at_level(logging.WARNING):
        labels = attach_annotation(barcodes, annotation, "toy")
    assert list(labels) == [UNLABELLED, "L1", UNLABELLED, "L2"]
    assert "1 of 3 annotated barcodes" in caplog.text and "Z-1" in caplog.text
    assert "2 of 4 counted spots have no annotation" in caplog.text and "A-1" in caplog.text
    with pytest.raises(ValueError, match="none of the 2 annotated barcodes"):
        attach_annotation(barcodes, pd.Series({"A1": "L1", "B1": "L2"}), "toy")
    with pytest.raises(ValueError, match="twice"):
        attach_annotation(barcodes, pd.Series(["L1", "L2"], index=["A-1", "A-1"]), "toy")


def test_loaders_name_missing_and_foreign_files(tmp_path, layer_map):
    with pytest.raises(FileNotFoundError, match="datasets"):
        load_mob(tmp_path / "absent.rda")
    (tmp_path / "text.rda").write_text("not an R data file")
    with pytest.raises(ValueError, match="not a readable R data file"):
        load_dlpfc_slice(tmp_path / "text.rda", tmp_path / "p.txt", layer_map, "151673")


def test_a_tampered_dlpfc_file_is_refused_with_both_checksums(mirror, tmp_path):
    entry = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["datasets"]["files"]["dlpfc_151673_counts"]
    copy = tmp_path / "mirror"
    (copy / DLPFC_DIR).mkdir(parents=True)
    tampered = copy / entry["path"]
    shutil.copy(mirror / entry["path"], tampered)
    with open(tampered, "ab") as handle:
        handle.write(b"\0")
    destination = tmp_path / "resources" / entry["path"]
    with pytest.raises(ChecksumMismatchError, match=rf"expected {entry['sha256']}, got [0-9a-f]{{64}}"):
        fetch(entry["url"], entry["sha256"], destination, mirror=copy, mirror_relpath=entry["path"])
    assert not destination.exists()
    tampered.unlink()
    with pytest.raises(DatasetFetchError, match="missing from the mirror"):
        fetch(entry["url"], entry["sha256"], destination, mirror=copy, mirror_relpath=entry["path"])
    fetched = fetch(entry["url"], entry["sha256"], destination, mirror=mirror, mirror_relpath=entry["path"])
    assert fetched.is_file()


# ----------------------------------------------------------------------------- features
def _brute_force_neighbour_mean(values, row, col, grid):
    """Neighbours by distance in the grid's metric embedding (hex: x = col / 2, y = row * sqrt(3) / 2)."""
    if grid == "hex":
        points = np.column_stack([col / 2.0, row * np.sqrt(3) / 2.0])
    else:
        points = np.column_stack([col, row]).astype(float)
    out = np.empty_like(values)
    for i in range(len(values)):
        distance = np.hypot(*(points - points[i]).T)
        near = np.flatnonzero(np.isclose(distance, 1.0))
        out[i] = values[near].mean(axis=0) if near.size else values[i]
    return out


@pytest.mark.parametrize("grid", ["hex", "square"])
def test_neighbour_mean_equals_a_brute_force_computation(grid):
    rng = np.random.default_rng(3)
    rows, cols = np.meshgrid(np.arange(12), np.arange(24), indexing="ij")
    if grid == "hex":  # Visium positions have even row + column
        keep = (rows + cols) % 2 == 0
        rows, cols = rows[keep], cols[keep]
    rows, cols = rows.ravel(), cols.ravel()
    chosen = rng.random(rows.size) < 0.7  # holes, edges and (likely) isolated spots
    row, col = rows[chosen], cols[chosen]
    values = rng.normal(size=(row.size, 4))
    adjacency = grid_adjacency(row, col, grid)
    assert (adjacency != adjacency.T).nnz == 0 and adjacency.diagonal().sum() == 0
    np.testing.assert_allclose(neighbour_mean(values, adjacency), _brute_force_neighbour_mean(values, row, col, grid))


def test_grid_adjacency_rejects_shared_positions_and_unknown_grids():
    with pytest.raises(ValueError, match="share a grid position"):
        grid_adjacency(np.array([0, 0]), np.array([2, 2]), "hex")
    with pytest.raises(ValueError, match="grid must be one of"):
        grid_adjacency(np.array([0]), np.array([0]), "triangle")


def test_real_visium_grid_has_six_neighbours_inside_the_tissue(slice_151673):
    degree = np.asarray(grid_adjacency(slice_151673.grid_row, slice_151673.grid_col, "hex").sum(axis=1)).ravel()
    assert degree.max() == 6 and np.mean(degree == 6) > 0.85


def test_spot_features_code_layers_and_keep_unlabelled_spots(slice_151673, layer_map):
    adjacent = layer_proportions(layer_map, "151674")
    features = build_spot_features(slice_151673, "pca+smoothed", n_pcs=5, layers=DLPFC_LAYERS, adjacent=adjacent)
    assert features.X.shape == (3639, 10) and features.n_classes == 7
    assert int((features.layer == -1).sum()) == 28
    np.testing.assert_allclose(features.proportions()[2], 989 / 3611)
    adjacency = grid_adjacency(slice_151673.grid_row, slice_151673.grid_col, "hex")
    np.testing.assert_allclose(features.X[:, 5:], neighbour_mean(features.X[:, :5], adjacency))


# ----------------------------------------------------------------------------- weights and starts
def test_weight_settings():
    features = blob_features(unlabelled=20)
    oracle = setting_weights(features, "oracle", strength=0.5, rng=np.random.default_rng(0))
    np.testing.assert_allclose(oracle, np.array([200, 120, 60]) / 380)  # unlabelled spots left out
    np.testing.assert_allclose(setting_weights(features, "adjacent", strength=0.5, rng=None), features.adjacent)
    np.testing.assert_allclose(setting_weights(features, "uniform", strength=0.5, rng=None), np.full(3, 1 / 3))
    draws = np.array(
        [setting_weights(features, "perturbed", strength=0.5, rng=np.random.default_rng(s)) for s in range(400)]
    )
    np.testing.assert_allclose(draws.sum(axis=1), 1.0)
    assert (draws > 0).all() and not np.allclose(draws[0], oracle)
    np.testing.assert_allclose(draws.mean(axis=0), oracle, atol=0.02)  # unbiased around the oracle
    alone = SpotFeatures(**{**features.__dict__, "adjacent": np.array([])})
    with pytest.raises(ValueError, match="no adjacent slice"):
        setting_weights(alone, "adjacent", strength=0.5, rng=None)


def test_seed_start_rank_matches_weights_and_ties_covariances():
    features = blob_features()
    kwargs = dict(sample="toy", feature_set="pca", seed_index=3, base_seed=11, strength=0.5, reg_covar=1e-6)
    full = seed_start(features, covariance_type="full", weights="adjacent", **kwargs)
    tied = seed_start(features, covariance_type="tied", weights="adjacent", **kwargs)
    np.testing.assert_array_equal(full.means, tied.means)  # one start per seed, whatever the covariance
    np.testing.assert_allclose(tied.covariances, np.tensordot(full.sizes / full.sizes.sum(), full.covariances, 1))
    np.testing.assert_allclose(np.sort(full.weights), np.sort(features.adjacent))
    assert list(np.argsort(full.weights, kind="stable")) == list(np.argsort(full.sizes, kind="stable"))
    np.testing.assert_allclose(
        full.weights_tv, 0.5 * np.abs(np.sort(features.adjacent) - np.sort(features.proportions())).sum()
    )


def test_fit_settings_run_reestimating_methods_only_from_their_weights():
    settings = fit_settings(
        ["smoothed"], ["tied", "full"], ["oracle", "adjacent"], ["vEM", "oEM", "sEM", "sklearn"], ["adjacent"]
    )
    assert ("smoothed", "tied", "adjacent", "oEM") in settings and (
        "smoothed",
        "full",
        "adjacent",
        "sklearn",
    ) in settings
    assert not [s for s in settings if s[3] in ("oEM", "sklearn") and s[2] != "adjacent"]
    assert len(settings) == 2 * (2 + 4)
    with pytest.raises(ValueError, match="weights='true'"):
        fit_settings(["pca"], ["tied"], ["true"], ["vEM"], [])


def test_plan_rejects_inconsistent_configs():
    import jsonschema

    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())
    section = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["dlpfc"]
    jsonschema.Draft202012Validator(schema["properties"]["dlpfc"]).validate(section)
    keys = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["datasets"]["files"]

    def filled(**changes):
        cfg = {
            "slices": ["151673"],
            "adjacent": {"151673": "151674"},
            "layers_dataset": "dlpfc_layers",
            "feature_sets": ["pca"],
            "covariance_types": ["tied"],
            "weight_settings": ["adjacent", "uniform"],
            "methods": ["vEM", "sEM"],
            "reestimate_weights": ["adjacent"],
            "n_seeds": 3,
            "seeds_per_job": 2,
            "map": {"features": "pca", "covariance_type": "tied", "weights": "adjacent"},
            "mob": {
                "dataset": "mob",
                "weight_settings": ["oracle"],
                "reestimate_weights": ["oracle"],
                "map_weights": "oracle",
            },
            "mclust": {"enabled": False},
        }
        return {**cfg, **changes}

    plan = plan_studies(filled(), keys)
    assert plan["dlpfc"].samples == ("151673",) and plan["dlpfc"].chunks == [[0, 1], [2]]
    assert plan["mob"].samples == ("mOB",) and plan["dlpfc"].mclust_weights == "adjacent"
    with pytest.raises(ValueError, match="map.features"):
        plan_studies(filled(map={"features": "smoothed", "covariance_type": "tied", "weights": "adjacent"}), keys)
    with pytest.raises(ValueError, match="keys of adjacent"):
        plan_studies(filled(adjacent={}), keys)
    with pytest.raises(ValueError, match="add tied"):
        plan_studies(
            filled(
                covariance_types=["full"],
                map={"features": "pca", "covariance_type": "full", "weights": "adjacent"},
                mclust={"enabled": True},
            ),
            keys,
        )
    with pytest.raises(ValueError, match="not configured"):
        plan_studies(filled(), [key for key in keys if key != "dlpfc_layers"])


# ----------------------------------------------------------------------------- fits and tables
def test_sklearn_tied_baseline_equals_tied_oem_from_the_same_start():
    features = blob_features(separation=3.0)
    start = seed_start(
        features,
        sample="toy",
        feature_set="pca",
        covariance_type="tied",
        weights="oracle",
        seed_index=0,
        base_seed=5,
        strength=0.5,
        reg_covar=1e-6,
    )
    fitted = {
        method: fit_table_method(
            method,
            features.X,
            weights=start.weights,
            means_init=start.means,
            covariances_init=start.covariances,
            options=FitOptions(covariance_type="tied", tol=0.0, max_iter=15),
        ).model
        for method in ("oEM", "sklearn")
    }
    ours, theirs = fitted["oEM"], fitted["sklearn"]
    np.testing.assert_allclose(ours.means_, theirs.means_, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, atol=1e-9)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, atol=1e-10)
    with pytest.raises(ValueError, match=r"\(d, d\)"):
        fit_table_method(
            "sklearn",
            features.X,
            weights=start.weights,
            means_init=start.means,
            covariances_init=np.stack([start.covariances] * 3),
            options=FitOptions(covariance_type="tied"),
        )
    with pytest.raises(ValueError, match="full .* or tied"):
        fit_table_method(
            "sklearn",
            features.X,
            weights=start.weights,
            means_init=start.means,
            covariances_init=start.covariances,
            options=FitOptions(covariance_type="diag"),
        )


@pytest.mark.parametrize("method", ["vEM", "oEM", "sEM", "sklearn"])
@pytest.mark.parametrize("covariance", ["tied", "full"])
def test_chunk_recovers_separated_layers_and_scores_annotated_spots_only(method, covariance):
    features = blob_features(unlabelled=30)
    kwargs = dict(
        sample="toy",
        feature_set="smoothed",
        weights="adjacent",
        method=method,
        seed_indices=[0, 1],
        base_seed=2,
        options=FitOptions(covariance_type=covariance, **FAST),
    )
    table = run_dlpfc_chunk(features, **kwargs)
    assert list(table.columns[:5]) == CONTRACT_COLUMNS[:5] and set(CONTRACT_COLUMNS) <= set(table.columns)
    assert (table["ari"] > 0.99).all() and (table["n_labelled"] == 370).all()
    again = run_dlpfc_chunk(features, **kwargs)
    pd.testing.assert_frame_equal(table.drop(columns="fit_seconds"), again.drop(columns="fit_seconds"))


def test_scores_ignore_unlabelled_spots():
    from sklearn.metrics import adjusted_rand_score

    features = blob_features(unlabelled=30)
    labels = np.random.default_rng(0).integers(0, 3, size=features.layer.size)
    ari, _ = score_labels(features, labels)
    mask = features.layer >= 0
    np.testing.assert_allclose(ari, adjusted_rand_score(features.layer[mask], labels[mask]))
    scrambled = labels.copy()
    scrambled[~mask] = (scrambled[~mask] + 1) % 3
    assert score_labels(features, scrambled) == score_labels(features, labels)


def test_summary_intervals_best_likelihood_seed_and_duplicates(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for method in ("vEM", "sEM"):
        for seed in range(5):
            rows.append(
                {
                    "slice": "151673",
                    "features": "pca",
                    "covariance_type": "tied",
                    "weights": "adjacent",
                    "method": method,
                    "seed_index": seed,
                    "seed": 100 + seed,
                    "n_components": 7,
                    "n_features": 15,
                    "ari": rng.random(),
                    "nmi": rng.random(),
                    "mean_loglik": -10.0 - seed if method == "vEM" else -20.0 + seed,
                    "converged": True,
                    "sinkhorn_converged": True,
                    "n_iter": 10,
                    "weights_tv": 0.1,
                    "fit_seconds": 0.5,
                }
            )
    per_seed = combine_per_seed([pd.DataFrame(rows[5:]), pd.DataFrame(rows[:5])])
    assert list(per_seed["method"].unique()) == ["vEM", "sEM"]
    # Written and read back at its declared path, a numeric-looking slice ID stays text.
    path = tmp_path / "results" / "tables" / "dlpfc.csv"
    write_table(per_seed, path)
    per_seed = read_table(path)
    assert per_seed["slice"].iloc[0] == "151673" and per_seed["converged"].dtype == bool
    summary = summarise_dlpfc(per_seed).set_index("method")
    for method in ("vEM", "sEM"):
        values = per_seed.loc[per_seed["method"] == method, "ari"]
        row = summary.loc[method]
        assert row["n_seeds"] == 5 and np.isclose(row["ari_mean"], values.mean())
        assert row["ari_low"] < row["ari_mean"] < row["ari_high"]
    assert summary.loc["vEM", "ari_best_ll"] == per_seed.loc[per_seed["method"] == "vEM", "ari"].iloc[0]
    assert summary.loc["sEM", "ari_best_ll"] == per_seed.loc[per_seed["method"] == "sEM", "ari"].iloc[4]
    with pytest.raises(ValueError, match="appear twice"):
        combine_per_seed([pd.DataFrame(rows), pd.DataFrame(rows[:1])])


def test_best_seed_maps_refit_the_recorded_fits_and_detect_stale_tables():
    features = blob_features(unlabelled=10)
    common = dict(
        sample="151673",
        feature_set="smoothed",
        weights="adjacent",
        base_seed=4,
        options=FitOptions(covariance_type="tied", **FAST),
    )
    per_seed = combine_per_seed(
        [run_dlpfc_chunk(features, method=m, seed_indices=[0, 1], **common) for m in ("vEM", "sEM")]
    )
    options = {k: v for k, v in common.items() if k not in ("sample",)}
    maps = best_seed_maps({"151673": features}, per_seed, **options)
    assert set(maps["method"]) == {"truth", "vEM", "sEM"}
    fitted = maps[maps["method"] == "sEM"]
    truth = maps[maps["method"] == "truth"]
    labelled = truth["label"].to_numpy() != ""
    assert (fitted["label"].to_numpy()[labelled] == truth["label"].to_numpy()[labelled]).mean() > 0.99
    stale = per_seed.assign(mean_loglik=per_seed["mean_loglik"] + 1.0)
    with pytest.raises(ValueError, match="another configuration"):
        best_seed_maps({"151673": features}, stale, **options)


# ----------------------------------------------------------------------------- claim
def _claim_table(sem_shift: float, noise: float = 0.01, seeds: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for sample in ("151673", "151674"):
        for seed in range(seeds):
            base = 0.4 + 0.05 * rng.normal()
            for method, ari in (("vEM", base), ("oEM", base + 0.005), ("sEM", base + sem_shift)):
                rows.append(
                    {
                        "slice": sample,
                        "features": "smoothed",
                        "covariance_type": "tied",
                        "weights": "adjacent",
                        "method": method,
                        "seed_index": seed,
                        "ari": ari + noise * rng.normal(),
                    }
                )
    return pd.DataFrame(rows)


def test_claim_verdict_follows_the_paired_differences():
    assert claim_spatial_domains(_claim_table(0.05)).verdict == "reproduced"
    assert claim_spatial_domains(_claim_table(-0.05)).verdict == "contradicted"
    assert claim_spatial_domains(_claim_table(0.0, noise=0.0001, seeds=2)).verdict in (
        "inconclusive",
        "not reproduced",
        "contradicted",
    )
    mixed = claim_spatial_domains(_claim_table(0.0025, noise=0.0001))  # above vEM, below oEM
    assert mixed.verdict == "partially reproduced"
    claim = claim_spatial_domains(_claim_table(0.05))
    assert "this project's own test" in claim.statement and "not a pass rule" in claim.criterion
    assert any("0.2-0.35" in line for line in claim.measured)
    # Other weights than the claim's do not count.
    other = _claim_table(-0.05).assign(weights="oracle")
    assert claim_spatial_domains(pd.concat([_claim_table(0.05), other])).verdict == "reproduced"


def test_paired_differences_pair_by_seed():
    table = _claim_table(0.05)
    paired = paired_differences(table, weights="adjacent", baseline="vEM").set_index("slice")
    rows = table[table["slice"] == "151673"].pivot(index="seed_index", columns="method", values="ari")
    differences = rows["sEM"] - rows["vEM"]
    np.testing.assert_allclose(paired.loc["151673", "diff_mean"], differences.mean())
    assert paired.loc["151673", "n_pairs"] == 6
    # The paired t-test, written out: t = mean / (sd / sqrt(n)) on n - 1 degrees of freedom.
    t = differences.mean() / (differences.std(ddof=1) / np.sqrt(6))
    np.testing.assert_allclose(paired.loc["151673", "p_value"], 2 * student_t.sf(abs(t), 5), rtol=1e-10)


def test_claim_needs_a_majority_of_significant_gains_after_holm():
    # sEM ahead on one slice only (the other is level): 1 of 2 comparisons per baseline is
    # significant, not a majority, so not reproduced outright.
    table = _claim_table(0.05)
    level = (table["slice"] == "151674") & (table["method"] == "sEM")
    table.loc[level, "ari"] = table[(table["slice"] == "151674") & (table["method"] == "vEM")]["ari"].to_numpy()
    claim = claim_spatial_domains(table)
    assert claim.verdict == "partially reproduced", claim.measured
    details = claim.details
    assert set(details.columns) >= {"p_value", "p_holm", "significantly_better"}
    assert (details["p_holm"] >= details["p_value"]).all()


# ----------------------------------------------------------------------------- mclust helpers
def test_eee_log_likelihood_equals_a_scipy_reference():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 3))
    weights, means = np.array([0.5, 0.3, 0.2]), rng.normal(size=(3, 3))
    A = rng.normal(size=(3, 3))
    sigma = A @ A.T + np.eye(3)
    reference = logsumexp(
        [np.log(w) + multivariate_normal(m, sigma).logpdf(X) for w, m in zip(weights, means)], axis=0
    ).mean()
    np.testing.assert_allclose(eee_mean_loglik(X, weights, means, sigma), reference, rtol=1e-12)


def test_mclust_inputs_and_scores_round_trip():
    features = blob_features(unlabelled=5)
    data, starts, sigmas = mclust_inputs(
        features, sample="toy", feature_set="pca", weights="adjacent", seed_indices=[0, 1], base_seed=3
    )
    assert data.shape == (400, 3) and len(starts) == 6 and len(sigmas) == 6
    start = seed_start(
        features,
        sample="toy",
        feature_set="pca",
        covariance_type="tied",
        weights="adjacent",
        seed_index=1,
        base_seed=3,
        strength=0.5,
        reg_covar=1e-6,
    )
    np.testing.assert_allclose(starts[starts["seed_index"] == 1][["m1", "m2", "m3"]], start.means)
    # Outputs as R writes them, here from scikit-learn's tied fit standing in for mclust.
    model = fit_table_method(
        "sklearn",
        features.X,
        weights=start.weights,
        means_init=start.means,
        covariances_init=start.covariances,
        options=FitOptions(covariance_type="tied"),
    ).model
    total = model.score(features.X) * 400
    fits = pd.DataFrame(
        [
            {
                "method": "mclust",
                "weights": "adjacent",
                "seed_index": 1,
                "loglik": total,
                "n_iter": 5,
                "converged": True,
                "fit_seconds": 0.1,
            },
            {
                "method": "mclust",
                "weights": "adjacent",
                "seed_index": 0,
                "loglik": np.nan,
                "n_iter": -1,
                "converged": False,
                "fit_seconds": 0.1,
            },
        ]
    )
    labels = pd.DataFrame({"mclust_1": model.predict(features.X) + 1})
    params = pd.DataFrame({"method": "mclust", "seed_index": 1, "component": [1, 2, 3], "weight": model.weights_})
    params[["m1", "m2", "m3"]] = model.means_
    sigma = pd.DataFrame(model.covariances_, columns=["s1", "s2", "s3"]).assign(
        method="mclust", seed_index=1, row=[1, 2, 3]
    )
    scored = score_mclust(features, fits, labels, params, sigma, sample="toy", feature_set="pca", base_seed=3)
    good, failed = scored.iloc[0], scored.iloc[1]
    assert good["ari"] > 0.99 and good["seed"] == start.seed and bool(good["converged"])
    np.testing.assert_allclose(good["mean_loglik"], good["r_mean_loglik"], rtol=1e-10)
    assert np.isnan(failed["ari"]) and not bool(failed["converged"])
    assert "apt-get install r-base-core r-cran-mclust" in INSTALL_R_HINT and "--sdm conda" in INSTALL_R_HINT


# ----------------------------------------------------------------------------- figures
def test_figures_draw_the_seeds_and_the_maps_of_the_tables(tmp_path, saved_figures):
    from matplotlib.collections import PathCollection

    features = blob_features(unlabelled=10)
    common = dict(
        sample="151673", feature_set="smoothed", base_seed=4, options=FitOptions(covariance_type="tied", **FAST)
    )
    per_seed = combine_per_seed(
        [
            run_dlpfc_chunk(features, method=m, weights=w, seed_indices=[0, 1], **common)
            for m in ("vEM", "sEM")
            for w in ("adjacent", "uniform")
        ]
    )
    plot_spatial_ari(per_seed, tmp_path / "ari.pdf")
    options = {k: v for k, v in common.items() if k != "sample"}
    maps = best_seed_maps({"151673": features}, per_seed, weights="adjacent", **options)
    plot_spatial_map(maps, tmp_path / "map.pdf")
    for name in ("ari.png", "map.png"):
        assert (tmp_path / name).is_file()
    ari_figure, map_figure = saved_figures
    # One panel (one slice, features, covariance): every seed's ARI is one of its dots.
    (panel,) = [ax for ax in ari_figure.axes if ax.get_title()]
    dots = np.concatenate([c.get_offsets()[:, 1] for c in panel.collections if isinstance(c, PathCollection)])
    np.testing.assert_allclose(np.sort(dots), np.sort(per_seed["ari"].to_numpy()))
    # Each map panel draws the spots of its method at their positions, one colour per label.
    for ax, method in zip(map_figure.axes, ["truth", "vEM", "sEM"]):
        spots = maps[maps["method"] == method]
        (drawn,) = ax.collections
        np.testing.assert_allclose(drawn.get_offsets(), spots[["x", "y"]].to_numpy())
        colours = pd.Series([tuple(c) for c in drawn.get_facecolors()], index=spots.index)
        assert (colours.groupby(spots["label"].fillna("").astype(str)).nunique() == 1).all()
