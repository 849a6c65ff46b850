"""Landscape family: the vectorised K = 2 losses, the minima finders and the experiment functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sinkhorn_em import eot_loss, nll
from sinkhorn_em_repro.experiments.landscape import (
    find_local_minima,
    landscape_minima,
    landscape_sample,
    run_landscape_1d,
    run_landscape_2d,
    stationary_points_2d,
    two_component_losses,
)

SEED = 11


def _core_losses(x, weights, means):
    X = x[:, None]
    args = (X, np.asarray(weights), np.asarray(means, dtype=float)[:, None], np.ones(2))
    return (
        nll(*args, covariance_type="spherical"),
        eot_loss(*args, covariance_type="spherical", tol=1e-12),
    )


@pytest.fixture(scope="module")
def sample():
    return landscape_sample(500, 1.0, 0.7, SEED, "test")


# --- the vectorised solver against the core (the truth source) -------------------------


@pytest.mark.parametrize("weights", [(0.7, 0.3), (0.5, 0.5), (0.93, 0.07)])
def test_two_component_losses_match_core_nll_and_sinkhorn(sample, weights):
    rng = np.random.default_rng(0)
    # Random pairs, coincident means, and means far outside the data.
    means = np.vstack([rng.uniform(-3, 3, size=(6, 2)), [[0.4, 0.4], [-2.9, 2.9], [3.0, 2.5]]])
    losses = two_component_losses(sample, weights, means)
    for k, pair in enumerate(means):
        core_nll, core_eot = _core_losses(sample, weights, pair)
        assert losses.nll[k] == pytest.approx(core_nll, abs=1e-10)
        assert losses.eot[k] == pytest.approx(core_eot, abs=1e-9)
    assert np.all(losses.column_error <= 1e-12)


def test_gradients_match_finite_differences(sample):
    weights = (0.7, 0.3)
    point = np.array([0.3, -1.2])
    exact = two_component_losses(sample, weights, point)
    step = 1e-6
    for k in range(2):
        shift = step * np.eye(2)[k]
        plus = two_component_losses(sample, weights, point + shift)
        minus = two_component_losses(sample, weights, point - shift)
        assert exact.nll_grad[k] == pytest.approx((plus.nll - minus.nll) / (2 * step), abs=1e-7)
        assert exact.eot_grad[k] == pytest.approx((plus.eot - minus.eot) / (2 * step), abs=1e-7)


def test_eot_dominates_nll_with_equality_exactly_where_masses_match(sample):
    axis = np.linspace(-3, 3, 41)
    t1, t2 = np.meshgrid(axis, axis, indexing="ij")
    losses = two_component_losses(sample, (0.7, 0.3), np.column_stack([t1.ravel(), t2.ravel()]))
    gap = losses.eot - losses.nll
    assert gap.min() >= -1e-9
    # On the diagonal both components coincide, the posterior masses equal the weights,
    # so the balanced plan is the EM plan (dual u = 0) and the losses coincide.
    diagonal = np.isclose(t1.ravel(), t2.ravel())
    assert np.max(np.abs(gap[diagonal])) <= 1e-12
    assert np.all(np.abs(losses.dual[diagonal]) <= 1e-10)
    # Away from it the posterior masses generally differ from the weights: strict gap.
    assert np.median(gap[~diagonal]) > 1e-4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": (0.7, 0.2)}, "sum to 1"),
        ({"weights": (1.0, 0.0)}, "strictly between 0 and 1"),
        ({"weights": (0.5, 0.3, 0.2)}, "exactly 2"),
        ({"x": np.zeros((5, 2))}, "one-dimensional"),
        ({"x": np.array([0.0, np.nan, 1.0])}, "NaN"),
        ({"means": np.zeros((3, 3))}, "shape"),
    ],
)
def test_two_component_losses_rejects_bad_input(kwargs, message):
    args = {"x": np.linspace(-1, 1, 10), "weights": (0.6, 0.4), "means": np.zeros((2, 2))}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        two_component_losses(args["x"], args["weights"], args["means"])


# --- minima finder ------------------------------------------------------------------------


def _tilted_double_well(x):
    return (x**2 - 1.0) ** 2 + 0.3 * x


def test_find_local_minima_recovers_known_minima():
    # f' = 4x^3 - 4x + 0.3: three real roots, the outer two are minima.
    roots = np.sort(np.roots([4.0, 0.0, -4.0, 0.3]).real)
    expected = roots[[0, 2]]
    grid = np.linspace(-2, 2, 81)
    on_grid = find_local_minima(grid, _tilted_double_well(grid))
    assert on_grid.size == 2
    assert np.all(np.abs(on_grid - expected) <= grid[1] - grid[0])
    refined = find_local_minima(grid, _tilted_double_well(grid), refine=_tilted_double_well)
    np.testing.assert_allclose(refined, expected, atol=1e-6)


def test_find_local_minima_ignores_endpoints_and_counts_plateaus_once():
    grid = np.arange(7.0)
    values = np.array([0.0, 1.0, 0.5, 0.5, 0.5, 1.0, -1.0])  # edges lowest, plateau in the middle
    np.testing.assert_array_equal(find_local_minima(grid, values), [2.0])
    assert find_local_minima(grid, grid).size == 0  # monotone: no interior minimum


def test_find_local_minima_rejects_bad_grid():
    with pytest.raises(ValueError, match="increasing"):
        find_local_minima([0.0, 2.0, 1.0], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        find_local_minima([0.0, 1.0, 2.0], [1.0, np.nan, 1.0])


# --- experiment functions on tiny grids ---------------------------------------------------

TINY = {"n": 300, "theta_star": 1.0, "seed": SEED, "sinkhorn_tol": 1e-10}
TINY_GRID = {"theta_min": -3.0, "theta_max": 3.0, "n_grid": 25}


@pytest.fixture(scope="module")
def tiny_curves():
    return pd.concat([run_landscape_1d(alpha, **TINY, **TINY_GRID) for alpha in (0.5, 0.75, 0.9)])


def test_landscape_1d_curves_use_the_core_and_respect_eot_above_nll(tiny_curves):
    assert list(tiny_curves.columns) == ["alpha", "theta_star", "n", "theta", "nll", "eot", "eot_minus_nll"]
    assert len(tiny_curves) == 3 * TINY_GRID["n_grid"]
    assert tiny_curves["eot_minus_nll"].min() >= -1e-9
    row = tiny_curves[(tiny_curves["alpha"] == 0.75)].iloc[7]
    x = landscape_sample(TINY["n"], 1.0, 0.75, SEED, "1d")
    core_nll, core_eot = _core_losses(x, (0.75, 0.25), [row["theta"], -row["theta"]])
    assert row["nll"] == pytest.approx(core_nll, abs=1e-12)
    assert row["eot"] == pytest.approx(core_eot, abs=1e-8)


def test_landscape_minima_table(tiny_curves):
    minima = landscape_minima(tiny_curves, **TINY)
    assert list(minima[["alpha", "loss"]].itertuples(index=False, name=None)) == [
        (a, loss) for a in (0.5, 0.75, 0.9) for loss in ("nll", "eot")
    ]
    step = TINY_GRID["theta_max"] - TINY_GRID["theta_min"]
    step /= TINY_GRID["n_grid"] - 1
    for row in minima.itertuples():
        locations = [float(v) for v in row.minima.split(";")] if row.minima else []
        assert row.n_local_minima == len(locations) >= 1
        # The string holds the locations to 4 decimals.
        assert min(abs(v - row.global_minimizer) for v in locations) <= 5e-5
        assert row.min_gap_eot_minus_nll >= -1e-9
    # alpha* = 0.5: swapping the labels maps theta to -theta, so minima come in +- pairs.
    for row in minima[minima["alpha"] == 0.5].itertuples():
        low, high = (float(v) for v in row.minima.split(";"))
        assert low == pytest.approx(-high, abs=1e-5)
    # alpha* > 0.5: both losses share the global minimiser (within the grid resolution),
    # and it is the positive one, near theta* = 1.
    for alpha in (0.75, 0.9):
        rows = minima[minima["alpha"] == alpha].set_index("loss")
        assert abs(rows.loc["nll", "global_minimizer"] - rows.loc["eot", "global_minimizer"]) <= step
        assert bool(rows.loc["nll", "global_minimizers_agree"])
        assert 0.5 < rows.loc["eot", "global_minimizer"] < 1.5


def test_landscape_1d_rejects_bad_settings():
    with pytest.raises(ValueError, match="theta_min"):
        run_landscape_1d(0.7, **TINY, theta_min=1.0, theta_max=-1.0, n_grid=5)
    with pytest.raises(ValueError, match="alpha"):
        run_landscape_1d(1.0, **TINY, **TINY_GRID)
    with pytest.raises(ValueError, match="n_grid"):
        run_landscape_1d(0.7, **TINY, theta_min=-1.0, theta_max=1.0, n_grid=2)
    with pytest.raises(ValueError, match="columns"):
        landscape_minima(pd.DataFrame({"alpha": [0.7]}), **TINY)


def test_landscape_sample_is_reproducible_and_setting_specific():
    a = landscape_sample(100, 1.0, 0.7, 3, "1d")
    np.testing.assert_array_equal(a, landscape_sample(100, 1.0, 0.7, 3, "1d"))
    # The config's 0.55 and linspace's 0.5500000000000002 name the same setting.
    np.testing.assert_array_equal(
        landscape_sample(100, 1.0, 0.55, 3, "1d"), landscape_sample(100, 1.0, 0.5500000000000002, 3, "1d")
    )
    assert not np.array_equal(a, landscape_sample(100, 1.0, 0.7, 4, "1d"))
    assert not np.array_equal(a, landscape_sample(100, 1.0, 0.7, 3, "2d"))


@pytest.fixture(scope="module")
def tiny_2d():
    settings = {"alpha": 0.7, "n": 300, "theta_star": 1.0, "seed": SEED}
    grid = run_landscape_2d(**settings, theta_min=-3.0, theta_max=3.0, n_grid=25)
    return grid, stationary_points_2d(grid, **settings, sinkhorn_tol=1e-11), settings


def test_stationary_points_2d_are_stationary_and_correctly_classified(tiny_2d):
    grid, points, settings = tiny_2d
    assert len(grid) == 25 * 25
    x = landscape_sample(settings["n"], 1.0, settings["alpha"], SEED, "2d")
    weights = (settings["alpha"], 1 - settings["alpha"])
    step = 1e-4
    for row in points.itertuples():
        index = 0 if row.loss == "nll" else 1
        centre = np.array([row.theta1, row.theta2])

        def value(p):
            return _core_losses(x, weights, p)[index]

        # Independent check with the core library: zero gradient, Hessian signs as reported.
        gradient = [(value(centre + step * e) - value(centre - step * e)) / (2 * step) for e in np.eye(2)]
        assert np.max(np.abs(gradient)) < 1e-6
        hessian = np.empty((2, 2))
        for i, ei in enumerate(np.eye(2)):
            for j, ej in enumerate(np.eye(2)):
                s = 1e-3
                hessian[i, j] = (
                    value(centre + s * ei + s * ej)
                    - value(centre + s * ei - s * ej)
                    - value(centre - s * ei + s * ej)
                    + value(centre - s * ei - s * ej)
                ) / (4 * s * s)
        eigenvalues = np.linalg.eigvalsh(hessian)
        expected = "minimum" if eigenvalues[0] > 0 else "maximum" if eigenvalues[1] < 0 else "saddle"
        assert row.kind == expected
        assert row.value == pytest.approx(row.value_core, abs=1e-9)


def test_stationary_points_2d_find_the_known_ones(tiny_2d):
    grid, points, settings = tiny_2d
    x = landscape_sample(settings["n"], 1.0, settings["alpha"], SEED, "2d")
    for loss in ("nll", "eot"):
        mine = points[points["loss"] == loss]
        # With both means equal to the sample mean, both gradients vanish exactly.
        on_diagonal = mine[
            np.isclose(mine["theta1"], x.mean(), atol=1e-6) & np.isclose(mine["theta2"], x.mean(), atol=1e-6)
        ]
        assert len(on_diagonal) == 1
        # Exactly one global minimum, near the truth (theta*, -theta*); all others spurious.
        best = mine[~mine["spurious"].astype(bool)]
        assert len(best) == 1 and best["kind"].iloc[0] == "minimum"
        assert abs(best["theta1"].iloc[0] - 1.0) < 0.4 and abs(best["theta2"].iloc[0] + 1.0) < 0.4
        assert best["value"].iloc[0] == pytest.approx(mine["value"].min())


def test_plots_draw_the_curves_and_the_stationary_points(tmp_path, tiny_curves, tiny_2d, saved_figures):
    from matplotlib.collections import PathCollection

    from sinkhorn_em_repro.plotting.landscape import plot_landscape_1d, plot_landscape_2d

    minima = landscape_minima(tiny_curves, **TINY)
    plot_landscape_1d(tiny_curves, minima, tmp_path / "landscape.pdf")
    grid, points, _ = tiny_2d
    plot_landscape_2d(grid, points, tmp_path / "landscape_2d.pdf", png_path=tmp_path / "other.png")
    for name in ("landscape.png", "landscape_2d.pdf", "other.png"):
        assert (tmp_path / name).is_file()
    one_d, two_d = saved_figures
    for ax, (alpha, group) in zip(one_d.axes, tiny_curves.groupby("alpha")):
        group = group.sort_values("theta")
        nll_line, nll_dots, eot_line, eot_dots = [line for line in ax.get_lines() if len(line.get_xdata()) > 0][2:]
        # Both curves are drawn relative to the smallest NLL of the panel.
        np.testing.assert_allclose(nll_line.get_ydata(), group["nll"] - group["nll"].min())
        np.testing.assert_allclose(eot_line.get_ydata(), group["eot"] - group["nll"].min())
        rows = minima[minima["alpha"] == alpha].set_index("loss")
        for loss, dots in (("nll", nll_dots), ("eot", eot_dots)):
            assert len(dots.get_xdata()) == rows.loc[loss, "n_local_minima"]
    # Every stationary point of each loss is marked on its panel.
    for ax, loss in zip(two_d.axes[:2], ("nll", "eot")):
        marked = np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
        expected = points[points["loss"] == loss][["theta1", "theta2"]].to_numpy()
        assert sorted(map(tuple, np.round(marked, 12))) == sorted(map(tuple, np.round(expected, 12)))


# --- the tiny pipeline run ---------------------------------------------------------------


@pytest.mark.pipeline
def test_tiny_run_landscape_tables(tiny_run_cores2):
    tables = tiny_run_cores2.workdir / "results" / "tables"
    minima = pd.read_csv(tables / "landscape_minima.csv")
    assert {"alpha", "loss", "n_local_minima", "minima"} <= set(minima.columns)
    assert set(minima["loss"]) == {"nll", "eot"}
    assert (minima["min_gap_eot_minus_nll"] >= -1e-9).all()
    curves = pd.read_csv(tables / "landscape_curves.csv")
    assert set(curves["alpha"]) == set(minima["alpha"])
    stationary = pd.read_csv(tables / "landscape_2d_stationary.csv")
    for loss in ("nll", "eot"):
        assert (~stationary.loc[stationary["loss"] == loss, "spurious"].astype(bool)).sum() == 1
