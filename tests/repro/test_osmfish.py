"""osmFISH application: Loom loader, preprocessing, weights, experiment, summary, figures."""

from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from sinkhorn_em_repro.datasets.osmfish import (
    REQUIRED_FIELDS,
    OsmFISHFeatures,
    build_features,
    load_osmfish,
    normalise_library_size,
    preprocess_counts,
)
from sinkhorn_em_repro.experiments.osmfish import (
    best_seed_maps,
    combine_per_seed,
    crosscheck_oem_sklearn,
    fit_settings,
    kmeanspp_init,
    match_labels,
    match_weights_by_rank,
    perturb_weights,
    run_osmfish_chunk,
    seed_chunks,
    summarise_osmfish,
)
from sinkhorn_em_repro.fitting import FitOptions
from sinkhorn_em_repro.outputs import OSMFISH_SEEDS
from sinkhorn_em_repro.pipeline import read_table, write_table

LOOM_RELPATH = "spatial/osmFISH_SScortex_mouse_all_cells.loom"
SUMMARY_COLUMNS = ["target", "features", "weights", "method", "ari_mean", "ari_sd", "nmi_mean", "nmi_sd", "n_seeds"]
FAST_FIT = {"options": FitOptions(tol=1e-4, max_iter=60, sinkhorn_tol=1e-6)}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def loom_path(mirror_dir) -> Path:
    if mirror_dir is None or not (mirror_dir / LOOM_RELPATH).is_file():
        pytest.skip(f"the osmFISH loom is not in the dataset mirror ({LOOM_RELPATH}); set SINKHORN_EM_MIRROR")
    return mirror_dir / LOOM_RELPATH


@pytest.fixture(scope="module")
def osmfish(loom_path):
    return load_osmfish(loom_path)


def write_loom(path: Path, *, drop: str | None = None, gene_count: int | None = None) -> dict:
    """A small Loom-like HDF5 (4 genes x 6 cells, cells 1 and 4 invalid); returns what it holds."""
    rng = np.random.default_rng(0)
    content = {
        "matrix": rng.integers(1, 20, size=(4, 6)),
        "row_attrs/Gene": np.array([b"Gad2", b"Vip", b"Tbr1", b"Plp1"][: gene_count or 4]),
        "col_attrs/Region": np.array([b"L4", b"Excluded", b"L6", b"L4", b"Excluded", b"WM"]),
        "col_attrs/ClusterName": np.array([b"Pyr", b"Excluded", b"Olig", b"Pyr", b"Excluded", b"Astro"]),
        "col_attrs/Valid": np.array([1, 0, 1, 1, 0, 1]),
        "col_attrs/X": np.arange(6, dtype=float) * 10.0,
        "col_attrs/Y": np.arange(6, dtype=float) * -3.0,
        "col_attrs/CellID": np.array([b"a", b"b", b"c", b"d", b"e", b"f"]),
    }
    with h5py.File(path, "w") as handle:
        for name, values in content.items():
            if name != drop:
                handle.create_dataset(name, data=values)
    return content


def blob_features(n_per_class=(240, 120, 60), separation=8.0, seed=0) -> OsmFISHFeatures:
    """Well-separated Gaussian blobs dressed as osmFISH features (3 'regions', 2 'cell types')."""
    rng = np.random.default_rng(seed)
    centres = separation * np.eye(3)
    region = np.repeat(np.arange(3), n_per_class)
    X = centres[region] + rng.normal(size=(region.size, 3))
    return OsmFISHFeatures(
        X=X,
        region=region,
        cell_type=(region > 0).astype(np.int64),
        region_names=np.array(["A", "B", "C"]),
        cell_type_names=np.array(["neuron", "glia"]),
        x=X[:, 0],
        y=X[:, 1],
    )


# ----------------------------------------------------------------------------- loader
def test_loader_reads_the_published_file(osmfish, loom_path):
    assert osmfish.counts.shape == (4839, 33)
    assert osmfish.n_cells == 4839 and osmfish.n_genes == 33
    assert len(set(osmfish.region)) == 11
    assert len(set(osmfish.cell_type)) == 31
    assert "Excluded" not in set(osmfish.region) | set(osmfish.cell_type)
    assert osmfish.valid.all()
    # Cells are rows: the first valid cell's counts are the first valid column of the Loom matrix.
    with h5py.File(loom_path, "r") as handle:
        first_valid = int(np.flatnonzero(handle["col_attrs/Valid"][()] == 1)[0])
        np.testing.assert_array_equal(osmfish.counts[0], handle["matrix"][:, first_valid])
    everything = load_osmfish(loom_path, valid_only=False)
    assert everything.n_cells == 6471 and (~everything.valid).sum() == 1632


def test_loader_keeps_valid_cells_decodes_labels_and_transposes(tmp_path):
    path = tmp_path / "small.loom"
    content = write_loom(path)
    data = load_osmfish(path)
    keep = content["col_attrs/Valid"] == 1
    np.testing.assert_array_equal(data.counts, content["matrix"][:, keep].T)
    assert list(data.region) == ["L4", "L6", "L4", "WM"]
    assert list(data.cell_type) == ["Pyr", "Olig", "Pyr", "Astro"]
    assert list(data.genes) == ["Gad2", "Vip", "Tbr1", "Plp1"]
    np.testing.assert_array_equal(data.x, content["col_attrs/X"][keep])
    assert list(data.cell_id) == ["a", "c", "d", "f"]
    assert load_osmfish(path, valid_only=False).n_cells == 6


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_loader_names_a_missing_field(tmp_path, field):
    path = tmp_path / "incomplete.loom"
    write_loom(path, drop=field)
    with pytest.raises(ValueError, match=field):
        load_osmfish(path)


def test_loader_rejects_inconsistent_shapes_foreign_files_and_missing_paths(tmp_path):
    write_loom(tmp_path / "genes.loom", gene_count=3)
    with pytest.raises(ValueError, match="row_attrs/Gene"):
        load_osmfish(tmp_path / "genes.loom")
    (tmp_path / "text.loom").write_text("not hdf5")
    with pytest.raises(ValueError, match="HDF5"):
        load_osmfish(tmp_path / "text.loom")
    with pytest.raises(FileNotFoundError, match="datasets"):
        load_osmfish(tmp_path / "absent.loom")


# ----------------------------------------------------------------------------- preprocessing
def test_library_size_normalisation_equalises_totals_and_keeps_proportions():
    counts = np.random.default_rng(1).integers(0, 50, size=(30, 8)) + np.eye(30, 8, dtype=int)
    totals = counts.sum(axis=1)
    normalised = normalise_library_size(counts)
    np.testing.assert_allclose(normalised.sum(axis=1), np.median(totals))
    np.testing.assert_allclose(normalised / normalised.sum(1, keepdims=True), counts / totals[:, None])
    np.testing.assert_allclose(normalise_library_size(counts, 1e4).sum(axis=1), 1e4)
    with pytest.raises(ValueError, match="no counts"):
        normalise_library_size(np.vstack([counts, np.zeros(8)]))
    with pytest.raises(ValueError, match="non-negative"):
        normalise_library_size(-counts)


def test_pca_features_are_ordered_uncorrelated_components_plus_standardised_xy(osmfish):
    expr = preprocess_counts(osmfish.counts, n_pcs=10)
    assert expr.shape == (4839, 10)
    covariance = np.cov(expr, rowvar=False)
    variances = np.diag(covariance)
    assert np.all(np.diff(variances) <= 1e-12)
    np.testing.assert_allclose(covariance - np.diag(variances), 0.0, atol=1e-8 * variances[0])
    with_xy = build_features(osmfish, n_pcs=10, with_xy=True).X
    assert with_xy.shape == (4839, 12)
    np.testing.assert_allclose(with_xy[:, :10], expr)
    np.testing.assert_allclose(with_xy[:, 10:].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(with_xy[:, 10:].std(axis=0), 1.0)
    assert np.corrcoef(with_xy[:, 10], osmfish.x)[0, 1] == pytest.approx(1.0)
    assert np.corrcoef(with_xy[:, 11], osmfish.y)[0, 1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_pcs"):
        preprocess_counts(osmfish.counts, n_pcs=34)


def test_features_survive_a_round_trip_through_npz(tmp_path):
    features = blob_features()
    features.save(tmp_path / "f.npz")
    loaded = OsmFISHFeatures.load(tmp_path / "f.npz")
    for name in OsmFISHFeatures.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(features, name))


# ----------------------------------------------------------------------------- weights and init
@pytest.mark.parametrize("strength", [0.1, 0.5, 0.99])
def test_perturbed_weights_are_positive_sum_to_one_and_unbiased(strength):
    alpha = np.array([0.5, 0.3, 0.15, 0.04, 0.01])
    rng = np.random.default_rng(3)
    draws = np.array([perturb_weights(alpha, strength, rng) for _ in range(4000)])
    assert (draws > 0).all()
    np.testing.assert_allclose(draws.sum(axis=1), 1.0)
    assert not np.allclose(draws[0], alpha)
    expected_sd = strength * np.sqrt(alpha * (1 - alpha) / (alpha.size + 1))
    standard_error = expected_sd / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - alpha) < 5 * standard_error)
    # The total variance (the rare classes' sample sds are too skewed to test one by one).
    assert draws.var(axis=0).sum() == pytest.approx((expected_sd**2).sum(), rel=0.1)


def test_zero_strength_keeps_the_weights_and_bad_strengths_are_refused():
    alpha = np.array([0.7, 0.2, 0.1])
    np.testing.assert_allclose(perturb_weights(alpha, 0.0, np.random.default_rng(0)), alpha)
    for strength in (1.0, -0.1):
        with pytest.raises(ValueError, match="strength"):
            perturb_weights(alpha, strength, np.random.default_rng(0))
    with pytest.raises(ValueError, match="summing to 1"):
        perturb_weights(np.array([0.7, 0.2]), 0.5, np.random.default_rng(0))


def test_rank_matching_is_the_best_assignment_of_weights_to_cluster_sizes():
    rng = np.random.default_rng(4)
    for _ in range(20):
        weights = rng.dirichlet(np.ones(5))
        sizes = rng.permutation(np.arange(1, 100))[:5]  # distinct: ties make "the largest" ambiguous
        matched = match_weights_by_rank(weights, sizes)
        np.testing.assert_array_equal(np.sort(matched), np.sort(weights))
        mismatch = np.abs(sizes / sizes.sum() - matched).sum()
        best = min(np.abs(sizes / sizes.sum() - weights[list(p)]).sum() for p in itertools.permutations(range(5)))
        assert mismatch == pytest.approx(best)
        assert matched[np.argmax(sizes)] == weights.max()


def test_kmeanspp_init_is_reproducible_and_gives_positive_definite_covariances():
    X = blob_features().X
    first = kmeanspp_init(X, 3, np.random.default_rng(5))
    second = kmeanspp_init(X, 3, np.random.default_rng(5))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    means, covariances, sizes = first
    assert means.shape == (3, 3) and covariances.shape == (3, 3, 3)
    assert sizes.sum() == len(X)
    assert np.all(np.linalg.eigvalsh(covariances) > 0)


def test_match_labels_undoes_a_permutation():
    truth = np.repeat(np.arange(4), 5)
    permuted = np.array([2, 0, 3, 1])[truth]
    np.testing.assert_array_equal(match_labels(truth, permuted, 4), truth)


def test_fit_settings_run_sklearn_only_where_asked_and_refuse_unknown_names():
    settings = fit_settings({"region": ["expr"], "celltype": []}, ["true", "uniform"], ["vEM", "sklearn"], ["true"])
    assert settings == [
        ("region", "expr", "true", "vEM"),
        ("region", "expr", "true", "sklearn"),
        ("region", "expr", "uniform", "vEM"),
    ]
    with pytest.raises(ValueError, match="features"):
        fit_settings({"region": ["xy"]}, ["true"], ["vEM"], [])
    assert seed_chunks(5, 2) == [[0, 1], [2, 3], [4]]


# ----------------------------------------------------------------------------- experiment
@pytest.fixture(scope="module")
def blob_runs():
    """Every method and weight setting on separated blobs, 3 seeds (about a second)."""
    features = blob_features()
    frames = [
        run_osmfish_chunk(
            features,
            target="region",
            feature_set="expr",
            weights=weights,
            method=method,
            seed_indices=[0, 1, 2],
            base_seed=11,
            perturb_strength=0.5,
            **FAST_FIT,
        )
        for weights in ("true", "perturbed", "uniform")
        for method in ("vEM", "oEM", "sEM", "sklearn")
    ]
    return features, combine_per_seed(frames)


def test_every_method_recovers_separated_clusters_with_true_weights(blob_runs):
    _, per_seed = blob_runs
    true_weights = per_seed[per_seed["weights"] == "true"]
    assert set(true_weights["method"]) == {"vEM", "oEM", "sEM", "sklearn"}
    assert (true_weights["ari"] > 0.95).all()
    assert (true_weights["weights_tv"] == 0).all()
    assert (per_seed.loc[per_seed["weights"] == "perturbed", "weights_tv"] > 0).all()


def test_seeds_are_shared_by_methods_and_weight_settings(blob_runs):
    _, per_seed = blob_runs
    seeds = per_seed.groupby("seed_index")["seed"].nunique()
    assert (seeds == 1).all()
    assert per_seed.groupby("seed_index")["seed"].first().nunique() == 3


def test_chunking_does_not_change_results(blob_runs):
    features, per_seed = blob_runs
    alone = run_osmfish_chunk(
        features,
        target="region",
        feature_set="expr",
        weights="perturbed",
        method="sEM",
        seed_indices=[2],
        base_seed=11,
        perturb_strength=0.5,
        **FAST_FIT,
    )
    together = per_seed[(per_seed["weights"] == "perturbed") & (per_seed["method"] == "sEM")]
    columns = ["seed", "ari", "nmi", "mean_loglik", "n_iter", "weights_tv"]
    pd.testing.assert_frame_equal(
        alone[columns].reset_index(drop=True), together[together["seed_index"] == 2][columns].reset_index(drop=True)
    )


def test_non_convergence_is_recorded_not_hidden():
    features = blob_features()
    common = {
        "target": "region",
        "feature_set": "expr",
        "weights": "uniform",
        "method": "sEM",
        "seed_indices": [0],
        "base_seed": 11,
    }
    few_iterations = run_osmfish_chunk(features, **common, options=FitOptions(tol=1e-12, max_iter=2, sinkhorn_tol=1e-6))
    starved_sinkhorn = run_osmfish_chunk(
        features, **common, options=FitOptions(max_iter=2, sinkhorn_tol=1e-14, sinkhorn_max_iter=1)
    )
    assert not few_iterations.loc[0, "converged"] and few_iterations.loc[0, "sinkhorn_converged"]
    assert not starved_sinkhorn.loc[0, "sinkhorn_converged"]
    summary = summarise_osmfish(pd.concat([few_iterations, starved_sinkhorn.assign(seed_index=1)], ignore_index=True))
    assert summary.loc[0, "converged_fraction"] < 1 and summary.loc[0, "sinkhorn_converged_fraction"] == 0.5


def test_summary_aggregates_seeds_and_pairs_the_degradation(blob_runs):
    _, per_seed = blob_runs
    summary = summarise_osmfish(per_seed)
    assert list(summary.columns[:4]) == SUMMARY_COLUMNS[:4] and set(SUMMARY_COLUMNS) <= set(summary.columns)
    assert len(summary) == 12 and (summary["n_seeds"] == 3).all()
    for _, row in summary.iterrows():
        rows = per_seed[(per_seed["weights"] == row["weights"]) & (per_seed["method"] == row["method"])]
        reference = per_seed[(per_seed["weights"] == "true") & (per_seed["method"] == row["method"])]
        assert row["ari_mean"] == pytest.approx(rows["ari"].mean())
        assert row["nmi_sd"] == pytest.approx(rows["nmi"].std(ddof=1))
        assert row["ari_best_ll"] == rows.loc[rows["mean_loglik"].idxmax(), "ari"]
        assert row["ari_drop"] == pytest.approx(reference["ari"].mean() - rows["ari"].mean())
    assert (summary.loc[summary["weights"] == "true", ["ari_drop", "nmi_drop"]] == 0).all().all()


def test_tables_survive_csv_even_with_only_true_weights(blob_runs, tmp_path):
    _, per_seed = blob_runs
    write_table(per_seed[per_seed["weights"] == "true"], tmp_path / "seeds.csv")
    reread = read_table(tmp_path / "seeds.csv", OSMFISH_SEEDS)
    summary = summarise_osmfish(reread)
    assert set(summary["weights"]) == {"true"}
    with pytest.raises(ValueError, match="twice"):
        combine_per_seed([reread, reread])


def test_best_seed_maps_reproduce_the_recorded_fit(blob_runs):
    features, per_seed = blob_runs
    maps = best_seed_maps(
        {"expr": features}, per_seed, target="region", weights="true", base_seed=11, perturb_strength=0.5, **FAST_FIT
    )
    assert len(maps) == len(features.X)
    for method in ("vEM", "oEM", "sEM", "sklearn"):
        rows = per_seed[(per_seed["weights"] == "true") & (per_seed["method"] == method)]
        best = rows.loc[rows["mean_loglik"].idxmax()]
        assert maps[f"{method}_seed_index"].iloc[0] == best["seed_index"]
        assert maps[f"{method}_ari"].iloc[0] == pytest.approx(best["ari"])
        # Matched clusters carry class names, and separated blobs are recovered.
        assert (maps[method] == maps["truth"]).mean() > 0.98
    tampered = per_seed.assign(mean_loglik=per_seed["mean_loglik"] + 1.0)
    with pytest.raises(ValueError, match="recorded"):
        best_seed_maps({"expr": features}, tampered, base_seed=11, perturb_strength=0.5, **FAST_FIT)


def test_oem_matches_scikit_learn_from_the_same_start_on_real_cells(osmfish):
    features = build_features(osmfish, n_pcs=10)
    check = crosscheck_oem_sklearn(features, target="region", feature_set="expr", n_seeds=1, n_iter=10, base_seed=3)
    row = check.iloc[0]
    assert row["max_abs_mean_diff"] < 1e-12 and row["max_abs_covariance_diff"] < 1e-12
    assert row["max_abs_weight_diff"] < 1e-10 and abs(row["loglik_diff"]) < 1e-10
    assert row["label_agreement"] == 1.0


def test_real_slice_runs_for_both_targets(osmfish):
    features = build_features(osmfish, n_pcs=10)
    for target, n_classes in (("region", 11), ("celltype", 31)):
        table = run_osmfish_chunk(
            features,
            target=target,
            feature_set="expr",
            weights="uniform",
            method="vEM",
            seed_indices=[0],
            base_seed=1,
            options=FitOptions(tol=1e-3, max_iter=5),
        )
        row = table.iloc[0]
        assert row["n_components"] == n_classes and row["n_features"] == 10
        assert 0.0 < row["ari"] < 1.0 and 0.0 < row["nmi"] < 1.0
        assert np.isfinite(row["mean_loglik"])


# ----------------------------------------------------------------------------- figures
def test_figures_draw_the_seeds_and_the_clusterings_of_the_tables(blob_runs, tmp_path, saved_figures):
    from matplotlib.collections import PathCollection

    from sinkhorn_em_repro.plotting.osmfish import plot_osmfish_ari, plot_osmfish_map

    features, per_seed = blob_runs
    write_table(per_seed, tmp_path / "seeds.csv")
    plot_osmfish_ari(tmp_path / "seeds.csv", tmp_path / "ari.pdf")
    maps = best_seed_maps({"expr": features}, per_seed, base_seed=11, perturb_strength=0.5, **FAST_FIT)
    write_table(maps, tmp_path / "map.csv")
    plot_osmfish_map(tmp_path / "map.csv", tmp_path / "map.pdf")
    for name in ("ari.png", "map.png"):
        assert (tmp_path / name).is_file()
    ari_figure, map_figure = saved_figures
    # Every seed's ARI is one dot of the swarm of its panel.
    panels = per_seed[["target", "features"]].drop_duplicates()
    for ax, (_, panel) in zip(ari_figure.axes, panels.iterrows()):
        rows = per_seed[(per_seed["target"] == panel["target"]) & (per_seed["features"] == panel["features"])]
        dots = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if isinstance(c, PathCollection)])
        np.testing.assert_allclose(np.sort(dots), np.sort(rows["ari"].to_numpy()))
    # Each map colours every cell by its label in the table: cells sharing a label share a colour.
    for ax, column in zip(map_figure.axes, ["truth", *[m for m in ("vEM", "oEM", "sEM", "sklearn") if m in maps]]):
        (cells,) = ax.collections
        colours = [tuple(c) for c in cells.get_facecolors()]
        assert len(colours) == len(maps)
        by_label = pd.DataFrame({"label": maps[column].to_numpy(), "colour": colours}).groupby("label")["colour"]
        assert (by_label.nunique() == 1).all()
        truth_colour = dict(zip(maps["truth"], [tuple(c) for c in map_figure.axes[0].collections[0].get_facecolors()]))
        if column != "truth":
            # A cluster takes the colour of the true class it was matched to (same names).
            for label, colour in by_label.first().items():
                if label in truth_colour:
                    assert colour == truth_colour[label]


# ----------------------------------------------------------------------------- pipeline
@pytest.mark.pipeline
def test_tiny_pipeline_writes_the_osmfish_tables(tiny_run_cores2):
    tables = tiny_run_cores2.workdir / "results" / "tables"
    summary = read_table(tables / "osmfish.csv")
    assert list(summary.columns[:4]) == SUMMARY_COLUMNS[:4] and set(SUMMARY_COLUMNS) <= set(summary.columns)
    assert set(summary["target"]) <= {"region", "celltype"}
    assert set(summary["weights"].astype(str).str.lower()) <= {"true", "perturbed", "uniform"}
    assert summary["ari_mean"].between(-1, 1).all()
    check = read_table(tables / "osmfish_crosscheck.csv")
    assert (check["max_abs_mean_diff"] < 1e-12).all() and (check["label_agreement"] == 1.0).all()
