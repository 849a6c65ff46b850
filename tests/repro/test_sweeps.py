"""Tests of the sweeps family: success rule, seeding, chunking, figures."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest

from sinkhorn_em_repro.experiments import sweeps
from sinkhorn_em_repro.experiments.sweeps import (
    SweepSetting,
    exact_counts,
    geometric_schedule,
    is_success,
    make_sweep_dataset,
    plan_epsilon_sweep,
    plan_init_sweep,
    run_epsilon_sweep_chunk,
    run_init_sweep_chunk,
    summarise_epsilon_sweep,
    summarise_init_sweep,
)
from sinkhorn_em_repro.fitting import FitOptions

# A tiny but non-trivial setting: K = 3, well enough separated that runs differ by start.
TINY = dict(
    weights=[0.5, 0.3, 0.2],
    dim=2,
    separation=3.0,
    dataset=0,
    n_samples=150,
    exact_proportions=True,
    pair_weights_by_size=False,
    seed=11,
    options=FitOptions(max_iter=15, tol=1e-6, sinkhorn_tol=1e-6, sinkhorn_max_iter=500, reg_covar=1e-6),
    success_rtol=0.2,
    success_atol=0.05,
)
# Written out here (not imported) so that renaming a promised column fails a test.
INIT_COLUMNS = [
    "K",
    "d",
    "weights",
    "separation",
    "init",
    "method",
    "n_runs",
    "success",
    "ci_low",
    "ci_high",
    "median_error",
    "median_iterations",
    "median_seconds",
]
EPSILON_COLUMNS = [
    "method",
    "eps",
    "schedule",
    "K",
    "d",
    "weights",
    "separation",
    "success",
    "ci_low",
    "ci_high",
    "mean_bias",
    "median_iterations",
]


def _init_chunk(
    first_init, n_inits, schemes=("random_from_data", "k-means++", "uniform_box"), methods=("vEM", "oEM", "sEM")
):
    return run_init_sweep_chunk(
        first_init=first_init, n_inits=n_inits, schemes=list(schemes), methods=list(methods), **TINY
    )


def _epsilon_chunk(first_init, n_inits, **overrides):
    params = dict(
        init="random_from_data",
        methods=["vEM", "sEM"],
        epsilons=[0.5, 1.0, 2.0],
        anneal_schedules=[{"eps0": 2.0, "decay": 0.7}],
        **TINY,
    )
    params.update(overrides)
    return run_epsilon_sweep_chunk(first_init=first_init, n_inits=n_inits, **params)


def _without_seconds(table: pd.DataFrame) -> pd.DataFrame:
    """Wall-time columns are the only ones allowed to differ between runs."""
    return table.drop(columns=[c for c in table.columns if c.endswith("seconds")])


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """As in the pipeline jobs: multithreaded BLAS on tiny matrices only adds contention."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def init_runs():
    return _init_chunk(0, 3)


@pytest.fixture(scope="module")
def epsilon_runs():
    return _epsilon_chunk(0, 2)


# --------------------------------------------------------------------------- success rule
def test_is_success_rule():
    assert is_success(1.0, 1.0, 0.0, 0.0)
    assert is_success(1.19, 1.0, 0.2, 0.0) and not is_success(1.21, 1.0, 0.2, 0.0)
    assert is_success(0.049, 0.0, 0.2, 0.05) and not is_success(0.051, 0.0, 0.2, 0.05)
    assert is_success(0.3, 1.0, 0.0, 0.0), "ending closer to the truth than the reference is success"
    with pytest.raises(ValueError, match="tolerances"):
        is_success(1.0, 1.0, -0.1, 0.0)


def test_run_started_at_the_truth_is_the_reference_and_a_success():
    runs = _init_chunk(0, 1, schemes=["truth"])
    assert (runs["error"] == runs["reference_error"]).all()
    assert (runs["distance_to_reference"] == 0.0).all()
    assert runs["success"].all()


def test_failed_runs_are_far_from_the_reference(init_runs):
    # The rule is about the optimum reached: failures must be measurably farther from the
    # reference fit than successes (which end at the reference optimum up to tolerance).
    assert set(init_runs["success"]) == {True, False}, "tiny setting should mix outcomes"
    failures = init_runs.loc[~init_runs["success"], "distance_to_reference"]
    assert (failures > TINY["success_atol"]).all()


# --------------------------------------------------------------------------- data and starts
@pytest.mark.parametrize(
    "weights, n", [([0.5, 0.3, 0.2], 2000), ([0.434, 0.26, 0.156, 0.094, 0.056], 997), ([1 / 3] * 3, 100)]
)
def test_exact_counts_sum_to_n_and_round(weights, n):
    counts = exact_counts(weights, n)
    assert counts.sum() == n
    assert np.all(np.abs(counts - n * np.asarray(weights)) < 1)


def test_dataset_has_the_stated_proportions_and_separation():
    setting = SweepSetting.create([0.434, 0.26, 0.156, 0.094, 0.056], 3, 2.0)
    sample = make_sweep_dataset(setting, 0, 1000, 5)
    np.testing.assert_array_equal(np.bincount(sample.labels), exact_counts(setting.weights, 1000))
    gaps = np.linalg.norm(sample.means[:, None] - sample.means[None], axis=-1)
    assert gaps[np.triu_indices(5, 1)].min() == pytest.approx(2.0)
    again = make_sweep_dataset(setting, 0, 1000, 5)
    np.testing.assert_array_equal(sample.X, again.X)
    assert not np.array_equal(sample.X, make_sweep_dataset(setting, 1, 1000, 5).X)


def test_setting_seeds_ignore_int_or_float_spelling():
    a = make_sweep_dataset(SweepSetting.create([0.5, 0.5], 2, 3), 0, 50, 1)
    b = make_sweep_dataset(SweepSetting.create([0.5, 0.5], 2.0, 3.0), 0, 50, 1)
    np.testing.assert_array_equal(a.X, b.X)


@pytest.mark.parametrize("scheme", ["random_from_data", "k-means++", "uniform_box"])
def test_initial_means_shape_and_support(scheme):
    X = np.random.default_rng(0).normal(size=(200, 3))
    means = sweeps.initial_means(X, 4, scheme, np.random.default_rng(1))
    assert means.shape == (4, 3)
    assert np.all(means >= X.min(axis=0)) and np.all(means <= X.max(axis=0))
    if scheme == "random_from_data":
        assert len({tuple(m) for m in means}) == 4
        assert all(any(np.array_equal(m, x) for x in X) for m in means)


def test_pairing_gives_the_largest_weight_to_the_biggest_cell():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = [50, 300, 150]  # cluster 1 is the biggest, then 2, then 0
    X = np.vstack([c + rng.normal(size=(m, 2)) for c, m in zip(centres, sizes)])
    drawn = centres[[0, 2, 1]] + 0.1
    paired = sweeps.pair_means_with_weights(X, drawn, [0.6, 0.3, 0.1])
    np.testing.assert_array_equal(paired, centres[[1, 2, 0]] + 0.1)
    # Equal weights: any order is right; the function must still return a permutation.
    same = sweeps.pair_means_with_weights(X, drawn, [1 / 3] * 3)
    assert sorted(map(tuple, same)) == sorted(map(tuple, drawn))


def test_pairing_by_size_changes_only_the_starts():
    as_drawn = _init_chunk(0, 2, schemes=["uniform_box"], methods=["vEM"])
    by_size = run_init_sweep_chunk(
        first_init=0, n_inits=2, schemes=["uniform_box"], methods=["vEM"], **{**TINY, "pair_weights_by_size": True}
    )
    assert set(as_drawn["pairing"]) == {"as_drawn"} and set(by_size["pairing"]) == {"by_size"}
    same = ["init_index", "reference_error", "collapsed_error"]
    pd.testing.assert_frame_equal(as_drawn[same], by_size[same])


def test_collapsed_fit_is_worse_than_the_reference_when_separated(init_runs):
    # At separation 3 the trivial fit is far from the truth; the rule can discriminate.
    assert (init_runs["collapsed_error"] > 2 * init_runs["reference_error"]).all()
    assert not init_runs["collapsed_success"].any()
    assert (summarise_init_sweep(init_runs)["collapsed_success_fraction"] == 0).all()


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="sum to 1"):
        SweepSetting.create([0.5, 0.4], 2, 1.0)
    with pytest.raises(ValueError, match="scheme"):
        sweeps.initial_means(np.zeros((5, 2)), 2, "grid", np.random.default_rng(0))
    with pytest.raises(ValueError, match="methods"):
        _init_chunk(0, 1, methods=["EM"])


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("eps0, decay", [(2.0, 0.8), (4.0, 0.5), (1.5, 0.99)])
def test_geometric_schedule(eps0, decay):
    schedule = geometric_schedule(eps0, decay)
    assert schedule[0] == eps0 and min(schedule) > 1.0
    assert np.allclose(np.diff(np.log(schedule)), np.log(decay))
    assert schedule[-1] * decay <= 1.0, "the schedule must stop at the first value <= 1"
    assert len(schedule) == math.ceil(math.log(eps0) / -math.log(decay))


@pytest.mark.parametrize("eps0, decay", [(1.0, 0.8), (0.5, 0.8), (2.0, 1.0), (2.0, 0.0)])
def test_geometric_schedule_rejects_non_annealing(eps0, decay):
    with pytest.raises(ValueError):
        geometric_schedule(eps0, decay)


# --------------------------------------------------------------------------- seeding / chunks
def test_chunking_and_order_change_neither_runs_nor_summary(init_runs):
    # Two chunks run in reverse order, then concatenated in that order.
    later = _init_chunk(1, 2)
    first = _init_chunk(0, 1)
    chunked = pd.concat([later, first], ignore_index=True)
    key = ["init", "init_index", "method"]
    pd.testing.assert_frame_equal(
        _without_seconds(chunked).sort_values(key).reset_index(drop=True),
        _without_seconds(init_runs).sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(
        _without_seconds(summarise_init_sweep(chunked)), _without_seconds(summarise_init_sweep(init_runs))
    )


def test_epsilon_aggregation_of_chunks_equals_unchunked(epsilon_runs):
    chunked = pd.concat([_epsilon_chunk(1, 1), _epsilon_chunk(0, 1)], ignore_index=True)
    pd.testing.assert_frame_equal(
        _without_seconds(summarise_epsilon_sweep(chunked)), _without_seconds(summarise_epsilon_sweep(epsilon_runs))
    )


def test_aggregating_a_chunk_twice_is_an_error(init_runs):
    with pytest.raises(ValueError, match="twice"):
        summarise_init_sweep(pd.concat([init_runs, init_runs]))


def _sweep_cfg(**overrides):
    cfg = dict(
        weights=[[0.5, 0.3, 0.2], [0.25] * 4],
        dims=[2, 5],
        separations=[1.0, 3.0],
        n_datasets=2,
        n_inits=5,
        inits_per_job=2,
        schemes=["k-means++"],
        methods=["sEM"],
        **{
            k: TINY[k]
            for k in ("n_samples", "exact_proportions", "pair_weights_by_size", "success_rtol", "success_atol")
        },
        # A config section spells the fit options flat, as config.yaml does.
        **{
            k: getattr(TINY["options"], k)
            for k in ("max_iter", "tol", "sinkhorn_tol", "sinkhorn_max_iter", "reg_covar")
        },
    )
    cfg.update(overrides)
    return cfg


def test_plan_covers_every_run_once_and_scales():
    jobs = plan_init_sweep(_sweep_cfg(), seed=3)
    assert len(jobs) == 2 * 2 * 2 * 2 * 3  # weights x dims x separations x datasets x blocks
    signature = inspect.signature(run_init_sweep_chunk)
    for params in jobs.values():
        signature.bind(**params)  # every job is a valid call
        assert params["options"] == TINY["options"]  # the section's fit options, one record
    covered = sorted(
        (tuple(p["weights"]), p["dim"], p["separation"], p["dataset"], i)
        for p in jobs.values()
        for i in range(p["first_init"], p["first_init"] + p["n_inits"])
    )
    assert len(covered) == len(set(covered)) == 2 * 2 * 2 * 2 * 5
    scaled = plan_init_sweep(_sweep_cfg(), seed=3, sweep_scale=2.5)
    n_runs = sum(p["n_inits"] for p in scaled.values())
    assert n_runs == 8 * math.ceil(2 * 2.5) * math.ceil(5 * 2.5)


def test_plan_of_epsilon_sweep_carries_its_epsilons_and_covers_every_run_once():
    schedules = [{"eps0": 2.0, "decay": 0.8}]
    cfg = _sweep_cfg(init="random_from_data", epsilons=[0.5, 1.0], anneal_schedules=schedules)
    del cfg["schemes"]
    jobs = plan_epsilon_sweep(cfg, seed=3)
    signature = inspect.signature(run_epsilon_sweep_chunk)
    for params in jobs.values():
        signature.bind(**params)  # every job is a valid call
        assert params["epsilons"] == [0.5, 1.0] and params["anneal_schedules"] == schedules
        assert params["init"] == "random_from_data" and "schemes" not in params
    covered = sorted(
        (tuple(p["weights"]), p["dim"], p["separation"], p["dataset"], i)
        for p in jobs.values()
        for i in range(p["first_init"], p["first_init"] + p["n_inits"])
    )
    assert len(covered) == len(set(covered)) == 2 * 2 * 2 * 2 * 5


def test_plan_rejects_duplicate_settings():
    with pytest.raises(ValueError, match="twice"):
        plan_init_sweep(_sweep_cfg(dims=[2, 2]), seed=3)


# --------------------------------------------------------------------------- summaries
def test_init_summary_columns_and_intervals(init_runs):
    table = summarise_init_sweep(init_runs)
    assert list(table.columns[: len(INIT_COLUMNS)]) == INIT_COLUMNS
    assert len(table) == 3 * 3 and (table["n_runs"] == 3).all()
    assert list(table["method"][:3]) == ["vEM", "oEM", "sEM"]
    assert ((table["ci_low"] <= table["success"]) & (table["success"] <= table["ci_high"])).all()
    assert table["median_iterations"].le(TINY["options"].max_iter).all()


def test_epsilon_sweep_shares_data_and_starts_with_init_sweep(epsilon_runs):
    init = _init_chunk(0, 2, schemes=["random_from_data"], methods=["vEM", "sEM"])
    unit = epsilon_runs[(epsilon_runs["schedule"] == "constant") & (epsilon_runs["eps"] == 1.0)]
    columns = ["init_index", "method", "error", "reference_error", "success", "n_iter"]
    pd.testing.assert_frame_equal(unit[columns].reset_index(drop=True), init[columns].reset_index(drop=True))


def test_epsilon_bias_columns(epsilon_runs):
    table = summarise_epsilon_sweep(epsilon_runs)
    assert set(EPSILON_COLUMNS) <= set(table.columns)
    unit = (table["schedule"] == "constant") & (table["eps"] == 1.0)
    assert (table.loc[unit, "mean_shift"] == 0.0).all()
    # Tempering displaces the optimum: epsilon != 1 must move the fit started at the truth.
    assert (table.loc[(table["schedule"] == "constant") & ~unit, "mean_shift"] > 1e-3).all()
    assert (table.loc[unit, "success"] == table.loc[unit, "success_own"]).all()
    annealed = table[table["schedule"] != "constant"]
    assert (annealed["eps"] == 1.0).all() and (annealed["anneal_iterations"] == 2).all()


# --------------------------------------------------------------------------- figures
def test_figures_draw_the_success_fractions_and_epsilon_curves(tmp_path, init_runs, epsilon_runs, saved_figures):
    from matplotlib.colors import to_rgba

    from sinkhorn_em_repro.plotting.style import METHOD_LABELS, method_color
    from sinkhorn_em_repro.plotting.sweeps import INIT_SCHEMES, plot_epsilon, plot_init_success

    init = summarise_init_sweep(init_runs)
    epsilon = summarise_epsilon_sweep(epsilon_runs)
    plot_init_success(init, tmp_path / "init.pdf")
    plot_epsilon(epsilon, tmp_path / "eps.pdf", tmp_path / "eps.png")
    for name in ("init.png", "eps.png"):
        assert (tmp_path / name).is_file()
    init_figure, epsilon_figure = saved_figures
    # Init figure, top-left panel (first scheme, first (K, weights, d)): each method's points are its
    # success fractions by separation.
    scheme = next(s for s in INIT_SCHEMES if s in set(init["init"]))
    K, weights, d = init[["K", "weights", "d"]].drop_duplicates().sort_values(["K", "weights", "d"]).iloc[0]
    cell = init[(init["init"] == scheme) & (init["K"] == K) & (init["weights"] == weights) & (init["d"] == d)]
    drawn = {c.get_label(): c for c in init_figure.axes[0].containers}
    for method, line in cell.groupby("method"):
        y = drawn[METHOD_LABELS[method]].lines[0].get_ydata()
        np.testing.assert_allclose(y, line.sort_values("separation")["success"])
    # Epsilon figure, panel (b): per method, the mean bias over settings at each constant epsilon.
    constant = epsilon[epsilon["schedule"] == "constant"]
    for method, group in constant.groupby("method"):
        (line,) = [
            line
            for line in epsilon_figure.axes[1].get_lines()
            if to_rgba(line.get_color()) == to_rgba(method_color(method))
        ]
        np.testing.assert_allclose(line.get_ydata(), group.groupby("eps")["mean_bias"].mean().to_numpy())


# --------------------------------------------------------------------------- pipeline
@pytest.mark.pipeline
def test_sweeps_tables_of_the_tiny_run(tiny_run_cores2):
    """The shared tiny run (repro_support.py) produced well-formed sweep tables."""
    workdir = tiny_run_cores2.workdir
    init = pd.read_csv(workdir / "results/tables/init_sweep.csv")
    assert list(init.columns[: len(INIT_COLUMNS)]) == INIT_COLUMNS
    assert (init["n_runs"] == 2).all() and set(init["method"]) == {"vEM", "oEM", "sEM"}
    epsilon = pd.read_csv(workdir / "results/tables/epsilon_sweep.csv")
    assert set(EPSILON_COLUMNS) <= set(epsilon.columns)
    for table in (init, epsilon):
        assert ((table["ci_low"] <= table["success"]) & (table["success"] <= table["ci_high"])).all()


def test_error_bars_accept_rounding_level_bounds_and_refuse_wrong_intervals():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sinkhorn_em_repro.plotting.sweeps import _error_bars

    fig, ax = plt.subplots()
    # Wilson bounds at success 0 and 1 off by rounding, as the full-scale sweep produced.
    _error_bars(ax, [1, 2], [0.0, 1.0], [1e-17, 0.9], [0.05, 1.0 - 1e-16], "sEM", "sEM")
    with pytest.raises(ValueError, match="does not contain its point"):
        _error_bars(ax, [1], [0.5], [0.6], [0.7], "sEM", "sEM")
    plt.close(fig)


def test_both_pairings_in_one_chunk_equal_the_two_single_pairing_chunks():
    both = run_init_sweep_chunk(
        first_init=0,
        n_inits=2,
        schemes=["uniform_box"],
        methods=["vEM", "sEM"],
        **{**TINY, "pair_weights_by_size": [False, True]},
    )
    for flag, name in ((False, "as_drawn"), (True, "by_size")):
        single = run_init_sweep_chunk(
            first_init=0,
            n_inits=2,
            schemes=["uniform_box"],
            methods=["vEM", "sEM"],
            **{**TINY, "pair_weights_by_size": flag},
        )
        pd.testing.assert_frame_equal(
            _without_seconds(both[both["pairing"] == name]).reset_index(drop=True), _without_seconds(single)
        )


def test_a_batch_of_chunks_equals_the_chunks_run_one_by_one():
    from sinkhorn_em_repro.experiments.sweeps import batch_jobs, run_sweep_batch

    chunks = plan_init_sweep(_sweep_cfg(weights=[[0.5, 0.3, 0.2]], dims=[2], separations=[3.0], n_datasets=1), seed=3)
    assert len(chunks) == 3
    jobs = batch_jobs(chunks, 2)
    assert list(jobs) == ["batch0", "batch1"] and [len(j["chunks"]) for j in jobs.values()] == [2, 1]
    batched = pd.concat([run_sweep_batch("init", job["chunks"]) for job in jobs.values()], ignore_index=True)
    one_by_one = pd.concat([run_init_sweep_chunk(**chunks[key]) for key in sorted(chunks)], ignore_index=True)
    pd.testing.assert_frame_equal(_without_seconds(batched), _without_seconds(one_by_one))


def test_paired_starts_put_every_method_of_a_start_in_one_row(init_runs):
    from sinkhorn_em_repro.experiments.sweeps import paired_starts

    pairs = paired_starts(init_runs)
    assert len(pairs) == len(init_runs) / 3
    row = pairs.iloc[0]
    runs = init_runs[(init_runs["init"] == row["init"]) & (init_runs["init_index"] == row["init_index"])]
    for method in ("vEM", "oEM", "sEM"):
        run = runs[runs["method"] == method].iloc[0]
        assert row[f"success_{method}"] == run["success"] and row[f"error_{method}"] == run["error"]
