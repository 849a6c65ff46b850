"""C. elegans family: loaders on the real mirror files, metrics, simulation, experiment."""

from __future__ import annotations

import hashlib
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from repro_support import MIRROR_ENV_VAR, mirror_directory
from sinkhorn_em_repro.datasets import ChecksumMismatchError
from sinkhorn_em_repro.datasets.celegans import (
    FDNC_SHA256,
    NeuronAtlas,
    WormNeurons,
    load_fdnc_worm,
    load_neuroml_worm,
    load_neuropal_atlas,
    load_table_s2,
    match_table_s2,
)
from sinkhorn_em_repro.experiments.celegans import (
    METHODS,
    atlas_scene,
    celegans_datasets,
    celegans_pools,
    final_summary,
    identification_metrics,
    plan_celegans,
    register_atlas,
    run_celegans_chunk,
    segmentation_map,
    simulate_trial,
    summarise_celegans,
    voxel_counts,
    worm_scene,
)
from sinkhorn_em_repro.fitting import FitOptions

# The mirror the pipeline tests use ($SINKHORN_EM_MIRROR, else ../shared/data beside the repository).
MIRROR = (mirror_directory() or Path("datasets-mirror-not-found")) / "celegans"
needs_mirror = pytest.mark.skipif(
    not MIRROR.is_dir(),
    reason=f"real C. elegans files not found at {MIRROR}: set {MIRROR_ENV_VAR} to the datasets mirror",
)
NEUROML_FILES = sorted(MIRROR.glob("openworm_nml/*.net.nml")) if MIRROR.is_dir() else []
PROTOCOL_NEURONS = ["PDA", "DVB", "PHAL", "ALNL", "PLML"]


# --------------------------------------------------------------------------- loaders
@needs_mirror
@pytest.mark.parametrize(
    "filename, sizes",
    [("sinkhornem_atlas.mat", {"head": 195, "tail": 45}), ("neuropal_id_atlas_xx_rgb.mat", {"head": 194, "tail": 45})],
)
def test_atlas_regions_have_the_documented_neurons(filename, sizes):
    for region, K in sizes.items():
        atlas = load_neuropal_atlas(MIRROR / filename, region)
        assert atlas.means.shape == (K, 6) and atlas.covariances.shape == (K, 6, 6)
        assert len(set(atlas.names)) == K
        np.testing.assert_allclose(atlas.covariances, atlas.covariances.transpose(0, 2, 1), atol=1e-8)
        assert np.linalg.eigvalsh(atlas.covariances).min() > -1e-8
    tail = load_neuropal_atlas(MIRROR / filename, "tail")
    assert set(PROTOCOL_NEURONS) <= set(tail.names)


@needs_mirror
def test_atlas_one_based_positions_become_zero_based():
    raw = load_neuropal_atlas(MIRROR / "sinkhornem_atlas.mat", "tail", zero_based=False)
    converted = load_neuropal_atlas(MIRROR / "sinkhornem_atlas.mat", "tail")
    np.testing.assert_allclose(raw.positions - converted.positions, 1.0)
    np.testing.assert_array_equal(raw.colors, converted.colors)
    np.testing.assert_array_equal(raw.covariances, converted.covariances)


@needs_mirror
def test_atlas_rejects_unknown_region_and_neuron():
    with pytest.raises(ValueError, match="region"):
        load_neuropal_atlas(MIRROR / "sinkhornem_atlas.mat", "body")
    tail = load_neuropal_atlas(MIRROR / "sinkhornem_atlas.mat", "tail")
    with pytest.raises(ValueError, match="NOTANEURON"):
        tail.subset(["PDA", "NOTANEURON"])


@needs_mirror
@pytest.mark.parametrize("path", NEUROML_FILES, ids=lambda p: p.name.split(".")[0])
def test_neuroml_worm_gives_ids_positions_and_colours(path):
    worm = load_neuroml_worm(path)
    text = path.read_text()
    populations = re.findall(r'<population id="pop_([^"]*)"', text)
    unnamed = [name for name in populations if name in ("", "NaN")]
    assert worm.n_unlabelled == len(unnamed)
    assert worm.n_neurons == len(populations) - len(unnamed) >= 200
    assert len(set(worm.names)) == worm.n_neurons
    assert worm.positions.shape == (worm.n_neurons, 3) and np.all(np.isfinite(worm.positions))
    assert worm.colors.shape == (worm.n_neurons, 3)
    assert worm.colors.min() >= 0 and worm.colors.max() <= 1
    # Spot check one neuron against the XML text itself.
    name = worm.names[len(worm.names) // 2]
    block = text[text.index(f'id="pop_{name}"') :]
    location = re.search(r'location x="([^"]+)" y="([^"]+)" z="([^"]+)"', block).groups()
    np.testing.assert_allclose(worm.positions[worm.names.index(name)], [float(v) for v in location])


def test_neuroml_refuses_duplicate_neurons(tmp_path):
    population = (
        '<population id="pop_AVAL" type="populationList"><property tag="color" value="0.1 0.2 0.3"/>'
        '<instance id="0"><location x="1" y="2" z="3"/></instance></population>'
    )
    path = tmp_path / "dup.net.nml"
    namespace = "http://www.neuroml.org/schema/neuroml2"
    path.write_text(f'<neuroml xmlns="{namespace}"><network>{population * 2}</network></neuroml>')
    with pytest.raises(ValueError, match="AVAL"):
        load_neuroml_worm(path)


@needs_mirror
def test_table_s2_hermaphrodite_lists_head_and_tail_with_volumes_and_colours():
    table = load_table_s2(MIRROR / "neuropal_table_s2.xlsx")
    counts = table.groupby("region").size()
    assert counts["head"] == 191 and counts["tail"] == 45
    assert table["name"].is_unique
    assert (table["volume_um3"] > 0).all()
    assert table[["ap_um", "dv_um", "lr_um", "red", "green", "blue"]].notna().all().all()
    assert set(PROTOCOL_NEURONS) <= set(table.loc[table["region"] == "tail", "name"])


@needs_mirror
def test_fdnc_worms_load_only_with_their_pinned_checksum(tmp_path):
    for filename, expected in {"template.data": 70, "test.data": 52}.items():
        worm = load_fdnc_worm(MIRROR / filename)
        assert worm.n_neurons == expected and "" not in worm.names
        assert worm.positions.shape == (expected, 3) and worm.colors.shape == (expected, 3)
    tampered = tmp_path / "template.data"
    payload = bytearray((MIRROR / "template.data").read_bytes())
    payload[-2] ^= 0xFF
    tampered.write_bytes(bytes(payload))
    with pytest.raises(ChecksumMismatchError, match=FDNC_SHA256["template.data"]):
        load_fdnc_worm(tampered)
    with pytest.raises(ValueError, match="sha256"):
        load_fdnc_worm(shutil.copy(MIRROR / "test.data", tmp_path / "renamed.data"))


class _LeavesAMark:
    """Unpickling this object creates a file: the kind of payload a hostile pickle carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_fdnc_loader_never_executes_a_pickle(tmp_path):
    marker = tmp_path / "executed"
    hostile = tmp_path / "template.data"
    hostile.write_bytes(pickle.dumps({"pts": _LeavesAMark(marker)}))
    with pytest.raises(ChecksumMismatchError):  # wrong checksum: not even opened as a pickle
        load_fdnc_worm(hostile)
    digest = hashlib.sha256(hostile.read_bytes()).hexdigest()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):  # right checksum, still not code
        load_fdnc_worm(hostile, sha256=digest)
    assert not marker.exists()


@needs_mirror
def test_real_worms_match_table_s2_by_name():
    table = load_table_s2(MIRROR / "neuropal_table_s2.xlsx")
    worm = load_neuroml_worm(MIRROR / "openworm_nml" / "NeuroPAL_1_YAw.net.nml")
    tail = match_table_s2(worm, table, "tail")
    listed = set(table.loc[table["region"] == "tail", "name"])
    assert set(tail.names) == set(worm.names) & listed
    assert 0 < tail.n_neurons <= 45


# --------------------------------------------------------------------------- metric
def test_accuracy_of_a_permuted_perfect_estimate_is_one():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 50, size=(12, 3))
    order = rng.permutation(12)
    metrics = identification_metrics(truth, truth[order], radii=(0.5, 3))
    assert metrics["accuracy_r0.5"] == metrics["accuracy_r3"] == 1.0
    assert metrics["position_error"] == pytest.approx(0.0)
    np.testing.assert_array_equal(order[metrics["permutation"]], np.arange(12))


def test_accuracy_of_a_shifted_estimate_depends_on_the_radius():
    truth = np.arange(10)[:, None] * np.array([[20.0, 0.0, 0.0]])  # 20 um apart: matching is unambiguous
    shifted = truth + np.array([0.0, 2.0, 0.0])
    metrics = identification_metrics(truth, shifted[::-1], radii=(1, 3))
    assert metrics["accuracy_r1"] == 0.0 and metrics["accuracy_r3"] == 1.0
    assert metrics["position_error"] == pytest.approx(2.0)


def test_accuracy_counts_only_neurons_within_the_radius():
    truth = np.zeros((4, 3)) + np.arange(4)[:, None] * 100
    estimate = truth.copy()
    estimate[0, 0] += 5.0
    assert identification_metrics(truth, estimate, radii=(3,))["accuracy_r3"] == pytest.approx(0.75)


# --------------------------------------------------------------------------- simulation
def toy_atlas(K=4, spacing=15.0):
    means = np.zeros((K, 6))
    means[:, 0] = spacing * np.arange(K) - 20.0
    means[:, 3:] = 10.0 + 5.0 * np.arange(K)[:, None]
    return NeuronAtlas(tuple(f"N{k}" for k in range(K)), means, np.tile(0.25 * np.eye(6), (K, 1, 1)), "tail")


def test_voxel_counts_share_the_voxels_in_proportion_with_a_floor():
    counts = voxel_counts([0.5, 0.3, 0.2], 1001)
    assert counts.sum() == 1001 and np.abs(counts - 1001 * np.array([0.5, 0.3, 0.2])).max() < 1
    floored = voxel_counts([1000.0, 1.0, 1.0], 100, min_count=10)
    assert floored[1] == floored[2] == 10 and floored[0] == 100
    with pytest.raises(ValueError, match="n_voxels"):
        voxel_counts([1, 1, 1], 2)


def test_atlas_scene_translates_positions_to_the_minimum_five():
    scene = atlas_scene(toy_atlas(), dataset="toy", n_voxels=400)
    np.testing.assert_allclose(scene.centers[:, :3].min(axis=0), 5.0)
    np.testing.assert_allclose(scene.centers[:, 3:], toy_atlas().colors)  # colours untouched
    np.testing.assert_allclose(scene.weights, 0.25)


def test_simulated_voxels_follow_the_generative_model():
    scene = atlas_scene(toy_atlas(K=3), dataset="toy", voxels_per_neuron=6000)
    trial = simulate_trial(scene, np.random.default_rng(1), scale_log_mean=1.0, scale_log_sd=0.1)
    X = np.vstack([trial.X_train, trial.X_test])
    labels = np.concatenate([trial.labels_train, trial.labels_test])
    for k in range(3):
        voxels = X[labels == k]
        # Covariance s_k I_6: s_k is a variance, so each coordinate has variance s_k.
        np.testing.assert_allclose(voxels.var(axis=0), trial.scales[k], rtol=0.1)
        np.testing.assert_allclose(voxels.mean(axis=0), trial.centers[k], atol=0.15)
    # Stratified 50/50 split: every neuron keeps half of its voxels for training.
    np.testing.assert_array_equal(np.bincount(trial.labels_train), scene.counts // 2)
    # log s_k ~ N(1, 0.1^2) across many neurons.
    many = atlas_scene(toy_atlas(K=400, spacing=1.0), dataset="s", voxels_per_neuron=2)
    log_scales = np.log(simulate_trial(many, np.random.default_rng(2)).scales)
    assert stats.kstest(log_scales, "norm", args=(1.0, 0.1)).pvalue > 1e-3


def test_register_atlas_recovers_an_affine_map():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(10, 6))
    A, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    target = np.column_stack([source[:, :3] @ A + b, 2.0 * source[:, 3:] - 1.0])
    np.testing.assert_allclose(register_atlas(source, target), target, atol=1e-10)


def test_worm_scene_uses_table_s2_volumes_as_weights():
    worm = WormNeurons(
        "w",
        ("A", "B", "C", "D", "E"),
        np.arange(15.0).reshape(5, 3) * [10, 1, 1],
        np.random.default_rng(4).uniform(size=(5, 3)),
    )
    table = pd.DataFrame(
        {
            "name": ["A", "B", "C", "D", "E", "Z"],
            "region": ["tail"] * 5 + ["head"],
            "volume_um3": [1.0, 2.0, 3.0, 4.0, 10.0, 5.0],
            "ap_um": [0, 10, 20, 30, 45, 0.0],
            "dv_um": [0, 1, 0, 1, 0, 0.0],
            "lr_um": [1, 0, 1, 0, 2, 0.0],
            "red": [0.1, 0.2, 0.3, 0.4, 0.5, 0],
            "green": [0.5, 0.1, 0.2, 0.9, 0.3, 0],
            "blue": [0.3, 0.3, 0.1, 0.2, 0.8, 0],
        }
    )
    scene = worm_scene(worm, table, dataset="w_tail", region="tail", voxels_per_neuron=400, min_voxels_per_neuron=1)
    np.testing.assert_allclose(scene.weights, np.array([1, 2, 3, 4, 10]) / 20, atol=1e-3)
    assert scene.center_covariances is None
    np.testing.assert_allclose(scene.centers[:, 3:].std(axis=0), 8.0)  # colour spread rescaled


# --------------------------------------------------------------------------- experiment
def celegans_options(n_iter: int) -> FitOptions:
    """The default config's C. elegans fit options with a budget of ``n_iter`` iterations."""
    return FitOptions(covariance_type="spherical", tol=0.0, max_iter=n_iter, sinkhorn_tol=1e-4)


def test_fit_options_must_be_a_fixed_budget():
    scene = atlas_scene(toy_atlas(K=4), dataset="toy", n_voxels=40)
    with pytest.raises(ValueError, match="tol=0"):
        run_celegans_chunk(scene, method="vEM", trials=[0], base_seed=5, options=FitOptions(tol=1e-6, max_iter=3))


@pytest.fixture(scope="module")
def tiny_runs():
    scene = atlas_scene(toy_atlas(K=4), dataset="toy", n_voxels=240)
    runs = pd.concat(
        [run_celegans_chunk(scene, method=m, trials=[0, 1], base_seed=5, options=celegans_options(4)) for m in METHODS],
        ignore_index=True,
    )
    return scene, runs


def test_every_method_starts_from_the_same_data_and_parameters(tiny_runs):
    _, runs = tiny_runs
    start = runs[runs["iteration"] == 0].set_index(["trial", "init", "method"])
    for column in ["accuracy_r1", "accuracy_r3", "position_error", "train_loglik", "test_loglik"]:
        per_method = start[column].unstack("method")
        np.testing.assert_allclose(per_method.to_numpy() - per_method[["vEM"]].to_numpy(), 0.0, atol=1e-12)
    assert sorted(runs["iteration"].unique()) == list(range(5))


def test_em_never_decreases_the_training_likelihood(tiny_runs):
    _, runs = tiny_runs
    for _, run in runs[runs["method"].isin(["vEM", "oEM"])].groupby(["trial", "init", "method"]):
        assert np.all(np.diff(run.sort_values("iteration")["train_loglik"]) >= -1e-9)


def test_chunks_do_not_change_the_trials(tiny_runs):
    scene, runs = tiny_runs
    alone = run_celegans_chunk(scene, method="sEM", trials=[1], base_seed=5, options=celegans_options(4))
    together = runs[(runs["method"] == "sEM") & (runs["trial"] == 1)].reset_index(drop=True)
    columns = [c for c in alone.columns if not c.endswith("seconds")]
    pd.testing.assert_frame_equal(alone[columns], together[columns])


def test_summary_gives_mean_and_t_interval_per_iterate(tiny_runs):
    _, runs = tiny_runs
    summary = summarise_celegans(runs, pools={"pooled": ["toy"]})
    row = summary[
        (summary["dataset"] == "toy")
        & (summary["method"] == "sEM")
        & (summary["init"] == "random")
        & (summary["metric"] == "test_loglik")
        & (summary["iteration"] == 4)
    ].iloc[0]
    values = runs[(runs["method"] == "sEM") & (runs["init"] == "random") & (runs["iteration"] == 4)]["test_loglik"]
    half = stats.t.ppf(0.975, len(values) - 1) * values.std() / np.sqrt(len(values))
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((values.mean() - half, values.mean() + half))
    assert row["n_trials"] == 2
    accuracies = summary[summary["metric"].str.startswith("accuracy")]
    assert accuracies["ci_low"].min() >= 0 and accuracies["ci_high"].max() <= 1
    final = final_summary(summary)
    assert set(final["iteration"]) == {4}
    assert {"dataset", "n_neurons", "init", "method", "metric", "mean", "ci_low", "ci_high", "n_trials"} <= set(final)


def test_segmentation_map_labels_every_voxel_with_a_neuron():
    scene = atlas_scene(toy_atlas(K=4), dataset="toy", n_voxels=200)
    table = segmentation_map(scene, trial=0, base_seed=5, options=celegans_options(3), methods=["vEM", "sEM"])
    assert len(table) == 2 * 2 * 200
    assert table["label"].between(0, 3).all()
    per_fit = table.groupby(["init", "method"])
    assert per_fit["x"].apply(lambda x: tuple(x)).nunique() == 1  # same voxels in every fit
    # On four neurons 15 um apart, the atlas start identifies every voxel's neuron.
    atlas = table[table["init"] == "atlas"]
    assert (atlas["label"] == atlas["truth"]).mean() > 0.95


def test_dataset_plan_names_jobs_and_rejects_missing_regions():
    cfg = {
        "atlas": "atlas_key",
        "table_s2": "s2",
        "protocol": {
            "enabled": True,
            "name": "atlas_tail5",
            "region": "tail",
            "neurons": PROTOCOL_NEURONS,
            "n_voxels": 5000,
            "n_trials": 20,
            "n_iter": 30,
        },
        "scaled": {
            "regions": ["head"],
            "voxels_per_neuron": {"head": 20, "tail": 100},
            "n_trials": {"head": 3, "tail": 10},
            "n_iter": {"head": 30, "tail": 30},
        },
        "real": {
            "worms": ["openworm_NeuroPAL_1_YAw", "openworm_NeuroPAL_2_AMw", "fdnc_test"],
            "regions": {"neuroml": ["tail"], "fdnc": ["head"]},
            "voxels_per_neuron": {"head": 40, "tail": 40},
            "min_voxels_per_neuron": 20,
            "volume_power": 1.0,
            "color_std": 8.0,
            "n_trials": {"head": 3, "tail": 5},
            "n_iter": {"head": 30, "tail": 30},
        },
    }
    plan = celegans_datasets(cfg)
    assert set(plan) == {"atlas_tail5", "atlas_head", "NeuroPAL_1_YAw_tail", "NeuroPAL_2_AMw_tail", "fDNC_test_head"}
    assert plan["fDNC_test_head"]["inputs"] == ["fdnc_test", "s2"]
    assert celegans_pools(plan) == {"NeuroPAL_worms_tail": ["NeuroPAL_1_YAw_tail", "NeuroPAL_2_AMw_tail"]}
    cfg["real"]["regions"]["fdnc"] = ["tail"]
    with pytest.raises(ValueError, match="no tail recording"):
        celegans_datasets(cfg)


def test_job_plan_partitions_trials_and_checks_the_segmentation_dataset():
    cfg = {
        "atlas": "atlas_key",
        "table_s2": "s2",
        "methods": ["vEM", "sEM"],
        "inits": ["random", "atlas"],
        "radii": [1, 3],
        "covariance_type": "spherical",
        "epsilon": 1.0,
        "reg_covar": 1e-6,
        "sinkhorn_tol": 1e-4,
        "sinkhorn_max_iter": 100,
        "scale_log_mean": 1.0,
        "scale_log_sd": 0.1,
        "test_fraction": 0.5,
        "init_variance": None,
        "min_position": 5.0,
        "trials_per_job": 3,
        "protocol": {
            "enabled": True,
            "name": "atlas_tail5",
            "region": "tail",
            "neurons": PROTOCOL_NEURONS,
            "n_voxels": 500,
            "n_trials": 7,
            "n_iter": 5,
        },
        "scaled": {"regions": [], "voxels_per_neuron": {}, "n_trials": {}, "n_iter": {}},
        "real": {
            "worms": ["fdnc_template"],
            "regions": {"neuroml": [], "fdnc": ["head"]},
            "voxels_per_neuron": {"head": 10},
            "min_voxels_per_neuron": 4,
            "volume_power": 1.0,
            "color_std": 8.0,
            "n_trials": {"head": 2},
            "n_iter": {"head": 5},
        },
        "authors_protocol": {
            "enabled": True,
            "n_trials": 5,
            "n_iter": {"vEM": 8, "oEM": 8, "sEM": 2},
            "prior_divisor": 10,
            "init_variance": 10,
            "eigenvalue_bounds": [0.1, 1.1],
            "train_probability": 0.5,
        },
        "segmentation": {"dataset": "fDNC_template_head", "trial": 0},
    }
    files = {"fdnc_template": {"sha256": "ab" * 32}}
    plan = plan_celegans(cfg, 11, files)
    protocol_jobs = [job for job in plan["fits"] if job.startswith("atlas_tail5/vEM/")]
    trials = [t for job in protocol_jobs for t in plan["fits"][job]["cfg"]["trials"]]
    assert sorted(trials) == list(range(7)) and len(protocol_jobs) == 3
    assert plan["fits"]["fDNC_template_head/sEM/chunk0"]["scene"]["sha256"] == "ab" * 32
    # The authors' protocol: same neurons and voxels as the protocol, its own trials and budgets.
    authors = plan["authors_fits"]
    assert sorted(authors) == [f"atlas_tail5/{m}/chunk{i}" for m in ("sEM", "vEM") for i in (0, 1)]
    assert [t for i in (0, 1) for t in authors[f"atlas_tail5/vEM/chunk{i}"]["cfg"]["trials"]] == list(range(5))
    assert authors["atlas_tail5/sEM/chunk0"]["cfg"]["n_iter"] == 2
    assert authors["atlas_tail5/vEM/chunk0"]["scene"]["spec"]["n_voxels"] == 500
    # Every project fit gets the section's fit options as one record, with the dataset's budget.
    for job in plan["fits"].values():
        assert job["cfg"]["options"] == FitOptions.from_config(cfg, tol=0.0, max_iter=5)
    assert plan["segmentation"]["cfg"]["options"].sinkhorn_max_iter == 100
    cfg["authors_protocol"]["enabled"] = False
    assert plan_celegans(cfg, 11, files)["authors_fits"] == {}
    cfg["authors_protocol"]["enabled"] = True
    cfg["segmentation"]["dataset"] = "NeuroPAL_1_YAw_tail"
    with pytest.raises(ValueError, match="segmentation"):
        plan_celegans(cfg, 11, files)


def test_final_trials_keep_every_trial_at_the_last_iterate(tiny_runs):
    from sinkhorn_em_repro.experiments.celegans import final_trials

    _, runs = tiny_runs
    trials = final_trials(runs, pools={"pooled": ["toy"]})
    assert set(trials["iteration"]) == {4} and set(trials["pool"]) == {"pooled"}
    row = trials[(trials["method"] == "sEM") & (trials["init"] == "random") & (trials["metric"] == "test_loglik")]
    expected = runs[(runs["method"] == "sEM") & (runs["init"] == "random") & (runs["iteration"] == 4)]
    assert sorted(row["value"]) == pytest.approx(sorted(expected["test_loglik"]))
    assert not trials.duplicated(["protocol", "dataset", "init", "method", "trial", "metric"]).any()
