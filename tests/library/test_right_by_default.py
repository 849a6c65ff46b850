"""Defaults that give the right answer: starts that know the weights, descent, honest flags.

References: scikit-learn's ``GaussianMixture`` and ``KMeans`` (success from random seeds,
the k-means start), POT's ``sinkhorn_log`` (exact E-steps and EOT losses), scipy's
densities, and the descent property of block-coordinate minimisation of the EOT free
energy (Mena et al. 2020, Sec. 3; Vayer & Lasalle 2025).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from references import as_full, pot_eot_loss, scipy_cost, scipy_eot_loss, semidual_eot
from sinkhorn_em import EOTGaussianMixture, SinkhornConvergenceWarning
from sinkhorn_em.mixture import pairing_by_size
from sinkhorn_em.synthetic import make_mixture

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def quietly(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit()


def matched_error(means, true_means):
    distance = np.linalg.norm(means[:, None, :] - true_means[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(distance)
    return float(distance[rows, cols].max())


# --------------------------------------------------------------------------- starts
@pytest.mark.parametrize(
    "n, weights, dim, data_seed",
    [(2000, [0.5, 0.3, 0.2], 2, 0), (3000, [0.4, 0.3, 0.2, 0.1], 3, 1)],
    ids=["readme-example", "K4-d3"],
)
def test_default_fits_reach_the_global_optimum_from_as_many_seeds_as_sklearn(n, weights, dim, data_seed):
    # The measurement: on the README example default Sinkhorn-EM reached the optimum
    # from 3 of 20 seeds where scikit-learn reached it from 20.
    sample = make_mixture(n, weights=weights, dim=dim, separation=3.0, rng=np.random.default_rng(data_seed))
    distance = np.linalg.norm(sample.means[:, None] - sample.means[None], axis=2)
    threshold = 0.25 * distance[np.triu_indices(len(weights), 1)].min()
    K = len(weights)
    successes = {}
    for label, make in [
        ("sEM", lambda s: EOTGaussianMixture(K, weights=sample.weights, random_state=s)),
        ("vEM", lambda s: EOTGaussianMixture(K, weights=sample.weights, method="em", random_state=s)),
        ("sklearn", lambda s: GaussianMixture(K, random_state=s)),
    ]:
        successes[label] = sum(
            matched_error(quietly(lambda: make(seed).fit(sample.X)).means_, sample.means) <= threshold
            for seed in range(20)
        )
    assert successes["sklearn"] >= 10  # the problem is one scikit-learn solves from most seeds
    assert successes["sEM"] >= successes["sklearn"] and successes["vEM"] >= successes["sklearn"]


def test_kmeans_init_starts_at_sklearns_kmeans_centres():
    sample = make_mixture(1500, weights=[1 / 3] * 3, dim=2, separation=3.0, rng=np.random.default_rng(5))
    model = EOTGaussianMixture(3, tol=0, max_iter=1, keep_trajectory=True, random_state=7).fit(sample.X)
    centres = KMeans(n_clusters=3, n_init=1, random_state=7).fit(sample.X).cluster_centers_
    np.testing.assert_allclose(model.trajectory_[0]["means"], centres, rtol=0, atol=1e-12)


def test_pairing_by_size_gives_the_largest_weight_to_the_largest_cell():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    counts = [100, 400, 250]  # cells of sizes 100, 400, 250
    X = np.vstack([c + rng.standard_normal((m, 2)) for c, m in zip(centres, counts)])
    order = pairing_by_size(X, centres, [0.2, 0.5, 0.3])
    # weight 0.5 -> the 400-point cell (index 1), 0.3 -> 250 (index 2), 0.2 -> 100 (index 0)
    np.testing.assert_array_equal(order, [0, 1, 2])
    np.testing.assert_array_equal(pairing_by_size(X, centres, [0.5, 0.3, 0.2]), [1, 2, 0])
    np.testing.assert_array_equal(pairing_by_size(X, centres, [1 / 3] * 3), [0, 1, 2])


@pytest.mark.parametrize("method", ["sinkhorn", "em"])
def test_a_start_paired_against_the_weights_is_repaired_by_size_unless_given(method):
    sample = make_mixture(3000, weights=[0.6, 0.3, 0.1], dim=2, separation=5.0, rng=np.random.default_rng(0))
    order = np.argsort(-sample.weights)
    means_init = sample.means[order[::-1]][np.argsort(order)]  # the largest weight on the smallest cluster
    settings = dict(weights=sample.weights, method=method, means_init=means_init, tol=0, max_iter=1)
    settings["keep_trajectory"] = True
    by_size = quietly(lambda: EOTGaussianMixture(3, **settings).fit(sample.X))
    given = quietly(lambda: EOTGaussianMixture(3, weights_pairing="given", **settings).fit(sample.X))
    np.testing.assert_array_equal(given.trajectory_[0]["means"], means_init)
    np.testing.assert_array_equal(by_size.trajectory_[0]["means"], sample.means)


def test_fit_many_pairs_each_start_by_size():
    from sinkhorn_em import fit_many

    sample = make_mixture(2000, weights=[0.6, 0.3, 0.1], dim=2, separation=5.0, rng=np.random.default_rng(1))
    starts = np.stack([sample.means[[2, 1, 0]], sample.means[[1, 0, 2]]])
    template = EOTGaussianMixture(3, weights=sample.weights, tol=0, max_iter=1, keep_trajectory=True)
    for model in quietly(lambda: fit_many(template, sample.X, starts)):
        np.testing.assert_array_equal(model.trajectory_[0]["means"], sample.means)


# --------------------------------------------------------------------------- descent
def random_problem(seed):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 6))
    dim = int(rng.integers(1, 5))
    weights = rng.dirichlet(np.full(K, 2.0))
    weights = np.maximum(weights, 0.03)
    weights /= weights.sum()
    n = int(rng.integers(150, 800))  # the POT reference of every iterate dominates the cost
    sample = make_mixture(n, weights=weights, dim=dim, separation=float(rng.uniform(1.0, 5.0)), rng=rng)
    settings = dict(
        weights=sample.weights,
        covariance_type=COVARIANCE_TYPES[seed % 4],
        init=("kmeans", "k-means++", "random_from_data", "random")[(seed // 4) % 4],
        random_state=seed,
    )
    return sample, settings


@pytest.mark.parametrize("seed", range(24))
def test_the_exact_eot_loss_of_default_sinkhorn_em_iterates_never_rises(seed):
    # A fixed budget (tol=0), the defaults otherwise; the loss of every iterate is evaluated
    # independently (scipy's densities, scipy's Newton on the semi-dual, itself checked against POT
    # below).
    sample, settings = random_problem(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # includes the library's own rise check
        warnings.simplefilter("error", SinkhornConvergenceWarning)
        model = EOTGaussianMixture(len(sample.weights), tol=0, max_iter=12, keep_trajectory=True, **settings)
        model.fit(sample.X)
    losses = np.array(
        [
            scipy_eot_loss(sample.X, sample.weights, it["means"], it["covariances"], settings["covariance_type"])[0]
            for it in model.trajectory_
        ]
    )
    rises = np.diff(losses) / np.abs(losses[1:])
    assert rises.max() <= 1e-10, rises
    # The reported objective is the exact loss at the parameters it is reported for.
    np.testing.assert_allclose(model.history_["objective"], losses, rtol=1e-10, atol=1e-12)
    assert model.lower_bound_ == pytest.approx(losses[-1], rel=1e-10)


@pytest.mark.parametrize("seed", [4, 7, 18])
def test_the_semi_dual_reference_equals_pots_sinkhorn(seed):
    # The descent property's reference (scipy's Newton on the semi-dual) against POT's log-domain
    # Sinkhorn to 1e-13, after 12 iterations; seed 18 has nearly decoupled columns (POT needs
    # thousands of iterations there).
    sample, settings = random_problem(seed)
    model = quietly(
        lambda: EOTGaussianMixture(len(sample.weights), tol=0, max_iter=12, keep_trajectory=True, **settings).fit(
            sample.X
        )
    )
    last = model.trajectory_[-1]
    args = (sample.X, sample.weights, last["means"], last["covariances"], settings["covariance_type"])
    ours, ours_plan = scipy_eot_loss(*args)
    pot, pot_plan = pot_eot_loss(*args)
    assert ours == pytest.approx(pot, rel=1e-11)
    np.testing.assert_allclose(ours_plan, pot_plan, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours_plan.sum(axis=0), sample.weights, rtol=0, atol=1e-12)


def reference_sinkhorn_em(X, weights, means, covariances, n_iter, reg_covar=1e-6):
    """Sinkhorn-EM with full covariances written from the paper: the exact plan (semi-dual Newton), weighted moments."""
    n = len(X)
    iterates = [(means, covariances)]
    for _ in range(n_iter):
        cost = scipy_cost(X, means, covariances, "full")
        resp = n * semidual_eot(cost, weights)[1]
        nk = resp.sum(axis=0)
        means = resp.T @ X / nk[:, None]
        covariances = np.stack(
            [
                ((X - means[k]).T * resp[:, k]) @ (X - means[k]) / nk[k] + reg_covar * np.eye(X.shape[1])
                for k in range(3)
            ]
        )
        iterates.append((means, covariances))
    return iterates


def test_default_sinkhorn_em_follows_exact_e_steps_to_1e_8():
    # The example, where the old default (inexact E-steps) was 6e-5 off after 20 iterations.
    sample = make_mixture(3000, weights=[0.6, 0.3, 0.1], dim=2, separation=5.0, rng=np.random.default_rng(0))
    model = quietly(
        lambda: EOTGaussianMixture(
            3, weights=sample.weights, random_state=0, tol=0, max_iter=20, keep_trajectory=True
        ).fit(sample.X)
    )
    start = model.trajectory_[0]
    reference = reference_sinkhorn_em(sample.X, sample.weights, start["means"], start["covariances"], 20)
    for ours, (means, covariances) in zip(model.trajectory_, reference):
        np.testing.assert_allclose(ours["means"], means, rtol=0, atol=1e-8)
        np.testing.assert_allclose(ours["covariances"], covariances, rtol=0, atol=1e-8)


def test_default_sinkhorn_em_solves_e_steps_that_pull_samples_across_a_large_cost_gap():
    # Half the mass is known to sit in a tight component 40 sigma away from 90% of the samples:
    # the first E-step must pull 240 samples across ~7,000 nats, and the next one starts from
    # potentials thousands of nats off for the moved parameters. Before the loose-group roots
    # and the fallback start, 8 of 8 E-steps stopped at sinkhorn_max_iter=1000.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (540, 2)), rng.normal(40.0, 0.3, (60, 2))])
    weights = np.array([0.5, 0.5])
    means, covariances = np.array([[0.0, 0.0], [40.0, 40.0]]), np.stack([np.eye(2), 0.09 * np.eye(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", SinkhornConvergenceWarning)
        model = EOTGaussianMixture(
            2,
            weights=weights,
            means_init=means,
            covariances_init=covariances,
            weights_pairing="given",
            tol=0,
            max_iter=8,
            keep_trajectory=True,
        ).fit(X)
    losses = np.array(
        [scipy_eot_loss(X, weights, it["means"], it["covariances"], "full")[0] for it in model.trajectory_]
    )
    assert losses[0] > 1000.0  # the start really is that far from balanced
    np.testing.assert_allclose(model.history_["objective"], losses, rtol=1e-10)
    assert (np.diff(losses) <= 1e-10 * np.abs(losses[1:])).all()


# --------------------------------------------------------------------------- flags
def test_converged_is_false_when_every_e_step_failed():
    sample = make_mixture(2000, weights=[0.6, 0.3, 0.1], dim=2, separation=5.0, rng=np.random.default_rng(0))
    # One Sinkhorn step per E-step is not a descent method, and the fit says so too.
    with pytest.warns(ConvergenceWarning, match="rose by up to"):
        with pytest.warns(SinkhornConvergenceWarning, match="converged_ is False"):
            model = EOTGaussianMixture(3, weights=sample.weights, sinkhorn_max_iter=1, random_state=0).fit(sample.X)
    assert not model.converged_


def test_eot_loss_and_transport_plan_solve_to_their_own_tolerance():
    sample = make_mixture(2000, weights=[0.6, 0.3, 0.1], dim=2, separation=5.0, rng=np.random.default_rng(0))
    model = quietly(
        lambda: EOTGaussianMixture(3, weights=sample.weights, sinkhorn_max_iter=1, random_state=0).fit(sample.X)
    )
    expected, expected_plan = pot_eot_loss(sample.X, model.weights_, model.means_, model.covariances_, "full")
    assert model.eot_loss(sample.X) == pytest.approx(expected, rel=1e-10)
    plan = model.transport_plan(sample.X)
    np.testing.assert_allclose(plan.sum(axis=0), model.weights_, rtol=0, atol=1e-11)
    np.testing.assert_allclose(plan, expected_plan, rtol=0, atol=1e-11)


def test_fewer_distinct_components_than_k_warns_like_sklearn():
    X = np.tile([[1.0, 2.0]], (50, 1))
    with pytest.warns(ConvergenceWarning, match=r"distinct components \(1\).*n_components \(3\)"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Number of distinct clusters")  # KMeans' own
            EOTGaussianMixture(3).fit(X)


def test_weights_normalised_in_single_precision_are_accepted():
    sample = make_mixture(500, weights=[0.5, 0.3, 0.2], dim=2, separation=3.0, rng=np.random.default_rng(0))
    counts = np.array([9, 5, 3], dtype=np.float32)  # sums to 1 + 4.5e-8 in float64
    weights = counts / counts.sum()
    assert abs(weights.sum(dtype=np.float64) - 1.0) > 1e-8  # refused before (tolerance 1e-8)
    model = quietly(lambda: EOTGaussianMixture(3, weights=weights, random_state=0).fit(sample.X))
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(model.weights_, counts / counts.sum(dtype=np.float64), rtol=1e-6)


# --------------------------------------------------------------------------- scikit-learn parity
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_parity_attributes_and_criteria_match_sklearn(covariance_type):
    sample = make_mixture(800, weights=[0.5, 0.3, 0.2], dim=3, separation=3.0, rng=np.random.default_rng(2))
    ours = quietly(
        lambda: EOTGaussianMixture(3, method="oem", covariance_type=covariance_type, random_state=0).fit(sample.X)
    )
    reference = GaussianMixture(3, covariance_type=covariance_type)
    reference.weights_, reference.means_, reference.covariances_ = ours.weights_, ours.means_, ours.covariances_
    reference.precisions_cholesky_ = ours.precisions_cholesky_
    reference.precisions_ = ours.precisions_
    reference.n_features_in_ = 3
    full_covariances = as_full(ours.covariances_, covariance_type, 3, 3)
    full_precisions = as_full(ours.precisions_, covariance_type, 3, 3)
    for k in range(3):
        np.testing.assert_allclose(full_precisions[k] @ full_covariances[k], np.eye(3), atol=1e-10)
    assert ours.aic(sample.X) == pytest.approx(reference.aic(sample.X), rel=1e-12)
    assert ours.bic(sample.X) == pytest.approx(reference.bic(sample.X), rel=1e-12)
    np.testing.assert_array_equal(ours.fit_predict(sample.X), quietly(lambda: ours.fit(sample.X)).predict(sample.X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_draws_from_the_fitted_mixture(covariance_type):
    sample = make_mixture(800, weights=[0.5, 0.3, 0.2], dim=2, separation=4.0, rng=np.random.default_rng(3))
    model = quietly(
        lambda: EOTGaussianMixture(3, weights=sample.weights, covariance_type=covariance_type, random_state=0).fit(
            sample.X
        )
    )
    X, y = model.sample(60_000)
    assert X.shape == (60_000, 2) and y.shape == (60_000,)
    np.testing.assert_allclose(np.bincount(y, minlength=3) / 60_000, model.weights_, atol=0.01)
    full = as_full(model.covariances_, covariance_type, 3, 2)
    for k in range(3):
        np.testing.assert_allclose(X[y == k].mean(axis=0), model.means_[k], atol=0.05)
        np.testing.assert_allclose(np.cov(X[y == k].T), full[k], atol=0.1 * np.abs(full[k]).max())


def test_warm_start_continues_from_the_fitted_parameters():
    sample = make_mixture(1500, weights=[0.6, 0.3, 0.1], dim=2, separation=4.0, rng=np.random.default_rng(4))
    settings = dict(weights=sample.weights, random_state=0, keep_trajectory=True)
    model = quietly(lambda: EOTGaussianMixture(3, warm_start=True, tol=0, max_iter=5, **settings).fit(sample.X))
    means, covariances, loss = model.means_.copy(), model.covariances_.copy(), model.lower_bound_
    quietly(lambda: model.fit(sample.X))
    np.testing.assert_array_equal(model.trajectory_[0]["means"], means)
    np.testing.assert_array_equal(model.trajectory_[0]["covariances"], covariances)
    assert model.history_["objective"][0] == pytest.approx(loss, rel=1e-12)
    # Ten iterations in two warm-started fits of five are one fit of ten.
    once = quietly(lambda: EOTGaussianMixture(3, tol=0, max_iter=10, **settings).fit(sample.X))
    np.testing.assert_allclose(model.means_, once.means_, rtol=0, atol=1e-9)
