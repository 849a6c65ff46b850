"""Objectives (``nll``, ``eot_loss``, ``semi_relaxed_plan``, ``free_energy``) against references.

References: densities from ``scipy.stats.multivariate_normal`` (never the library's
``gaussian_cost``) combined by ``scipy.special.logsumexp``; POT's
``ot.bregman.sinkhorn_log`` for the balanced plan; a log-domain half-step written here for
the E-step; and the variational definitions (minima of the free energy ``F``).
"""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
from scipy.special import logsumexp

from references import as_full, scipy_cost
from sinkhorn_em import (
    SinkhornConvergenceWarning,
    eot_loss,
    free_energy,
    nll,
    semi_relaxed_plan,
    sinkhorn_log,
)
from sinkhorn_em.losses import balanced_value

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def random_parameters(rng, K, d, covariance_type, mean_scale=2.0):
    """Random weights, means and covariances in the layout of ``covariance_type``."""
    weights = rng.dirichlet(np.full(K, 3.0))
    means = mean_scale * rng.standard_normal((K, d))
    factors = rng.standard_normal((K, d, d))
    full = factors @ np.swapaxes(factors, 1, 2) / d + 0.3 * np.eye(d)
    covariances = {
        "full": full,
        "diag": rng.uniform(0.3, 2.0, size=(K, d)),
        "spherical": rng.uniform(0.3, 2.0, size=K),
        "tied": full[0],
    }[covariance_type]
    return weights, means, covariances


def direct_nll(X, weights, means, covariances, covariance_type, epsilon=1.0):
    """``-eps mean_i log sum_k alpha_k N(x_i; mu_k, Sigma_k)^{1/eps}`` by log-sum-exp."""
    log_density = -scipy_cost(X, means, covariances, covariance_type)
    return -epsilon * logsumexp(np.log(weights)[None, :] + log_density / epsilon, axis=1).mean()


def sample(rng, n, weights, means, covariances, covariance_type):
    K, d = means.shape
    full = as_full(covariances, covariance_type, K, d)
    labels = rng.choice(K, size=n, p=weights)
    return np.stack([rng.multivariate_normal(means[k], full[k]) for k in labels])


def problem(seed, covariance_type, n=60, K=3, d=2):
    """Data and a random (not fitted) parameter set: the losses must hold for any theta."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 2.0
    weights, means, covariances = random_parameters(rng, K, d, covariance_type)
    return X, weights, means, covariances


# --------------------------------------------------------------------------- NLL
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 3, 20])  # 20: full/tied costs loop over components
def test_nll_equals_direct_log_sum_exp(covariance_type, d):
    for seed in range(3):
        X, weights, means, covariances = problem(seed, covariance_type, d=d)
        expected = direct_nll(X, weights, means, covariances, covariance_type)
        assert nll(X, weights, means, covariances, covariance_type) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_nll_sums_over_many_sample_blocks(covariance_type):
    # Enough samples and components that the blocked computation visits several blocks.
    X, weights, means, covariances = problem(7, covariance_type, n=30_000, K=40, d=3)
    expected = direct_nll(X, weights, means, covariances, covariance_type)
    assert nll(X, weights, means, covariances, covariance_type) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("epsilon", [0.25, 3.0])
def test_tempered_nll_equals_direct_computation(covariance_type, epsilon):
    X, weights, means, covariances = problem(4, covariance_type)
    expected = direct_nll(X, weights, means, covariances, covariance_type, epsilon)
    value = nll(X, weights, means, covariances, covariance_type, epsilon=epsilon)
    assert value == pytest.approx(expected, rel=1e-12)
    # Tempering changes the value: the test above would not notice an ignored epsilon otherwise.
    assert abs(value - direct_nll(X, weights, means, covariances, covariance_type)) > 1e-3


def test_weights_none_means_uniform():
    X, _, means, covariances = problem(5, "full")
    uniform = np.full(3, 1 / 3)
    assert nll(X, None, means, covariances) == pytest.approx(nll(X, uniform, means, covariances), rel=1e-14)
    assert eot_loss(X, None, means, covariances) == pytest.approx(eot_loss(X, uniform, means, covariances), rel=1e-12)


# --------------------------------------------------------------------------- E-step
def row_half_step(cost, weights, epsilon):
    """First half-step of Sinkhorn from ``g = log alpha`` with rows ``1/n``: ``(f, plan)``."""
    n = cost.shape[0]
    g = np.log(weights)
    f = -np.log(n) - logsumexp(g[None, :] - cost / epsilon, axis=1)
    return f, np.exp(f[:, None] + g[None, :] - cost / epsilon)


@pytest.mark.parametrize("epsilon", [1.0, 0.3, 4.0])
def test_e_step_equals_first_sinkhorn_half_step_from_log_alpha(epsilon):
    for seed in range(3):
        X, weights, means, covariances = problem(seed, "full", n=50, K=4)
        cost = scipy_cost(X, means, covariances, "full")
        n = cost.shape[0]
        log_resp, value = semi_relaxed_plan(cost, weights, epsilon)
        f, half_step_plan = row_half_step(cost, weights, epsilon)
        np.testing.assert_allclose(np.exp(log_resp) / n, half_step_plan, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-13)
        # The library's own solver: after one iteration the returned row potential is that of
        # the first row step (the column step moves only g).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SinkhornConvergenceWarning)
            one = sinkhorn_log(np.full(n, 1 / n), weights, cost, epsilon, tol=0.0, max_iter=1, g_init=np.log(weights))
        np.testing.assert_allclose(one.f, f, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            np.exp(one.f[:, None] + np.log(weights)[None, :] - cost / epsilon),
            np.exp(log_resp) / n,
            rtol=1e-11,
            atol=1e-300,
        )
        assert value == pytest.approx(direct_nll(X, weights, means, covariances, "full", epsilon), rel=1e-12)
        # The balanced solve used by the estimator starts from g = log alpha as well.
        _, first = balanced_value(cost, weights, epsilon, tol=0.0, max_iter=1, warn=False)
        np.testing.assert_allclose(first.f, f, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("epsilon", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_free_energy_at_the_semi_relaxed_plan_equals_nll(covariance_type, epsilon):
    X, weights, means, covariances = problem(6, covariance_type)
    cost = scipy_cost(X, means, covariances, covariance_type)
    log_resp, value = semi_relaxed_plan(cost, weights, epsilon)
    plan = np.exp(log_resp) / cost.shape[0]
    assert free_energy(plan, cost, weights, epsilon) == pytest.approx(value, rel=1e-12)
    assert value == pytest.approx(nll(X, weights, means, covariances, covariance_type, epsilon), rel=1e-12)


def test_semi_relaxed_plan_minimises_free_energy_over_row_constrained_plans():
    rng = np.random.default_rng(7)
    X, weights, means, covariances = problem(7, "full")
    cost = scipy_cost(X, means, covariances, "full")
    n, K = cost.shape
    log_resp, value = semi_relaxed_plan(cost, weights, 1.0)
    optimum = np.exp(log_resp) / n
    for _ in range(20):
        other = rng.dirichlet(np.ones(K), size=n) / n
        assert free_energy(other, cost, weights) > value
        # Moving slightly away from the optimum along the row-constrained set raises F.
        mix = 0.99 * optimum + 0.01 * other
        assert free_energy(mix, cost, weights) >= value


def test_free_energy_is_the_generalised_kl_formula_with_zero_entries():
    rng = np.random.default_rng(8)
    plan = rng.random((6, 3)) * 0.05
    plan[1, 2] = 0.0
    plan[4, 0] = 0.0
    cost = rng.random((6, 3))
    weights = np.array([0.2, 0.3, 0.5])
    reference = np.log(weights)[None, :] - np.log(6)
    positive = plan > 0
    kl = np.sum(plan[positive] * (np.log(plan[positive]) - np.broadcast_to(reference, plan.shape)[positive]))
    kl += 1.0 - plan.sum()
    for epsilon in (1.0, 0.3):
        assert free_energy(plan, cost, weights, epsilon) == pytest.approx(np.sum(plan * cost) + epsilon * kl, rel=1e-13)


# --------------------------------------------------------------------------- EOT loss
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("epsilon", [1.0, 0.5, 2.0])
def test_eot_loss_is_between_nll_and_the_independent_coupling(covariance_type, epsilon):
    for seed in range(4):
        X, weights, means, covariances = problem(10 + seed, covariance_type)
        cost = scipy_cost(X, means, covariances, covariance_type)
        relaxed = nll(X, weights, means, covariances, covariance_type, epsilon)
        balanced = eot_loss(X, weights, means, covariances, covariance_type, epsilon, tol=1e-12, max_iter=100_000)
        # a ⊗ alpha is feasible with KL = 0, so it bounds L from above.
        independent = float((cost @ weights).mean())
        # The semi-relaxed problem has more feasible plans: L >= NLL, strictly for a random theta.
        assert balanced > relaxed + 1e-6
        assert balanced < independent


def fixed_point_weights(cost, start, n_iter=20_000):
    """Weights equal to their own posterior column masses: ``alpha_k = mean_i r_ik(alpha)``."""
    alpha = np.asarray(start, dtype=float)
    for _ in range(n_iter):
        log_joint = np.log(alpha)[None, :] - cost
        new = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)).mean(axis=0)
        if np.abs(new - alpha).max() < 1e-15:
            return new
        alpha = new
    raise AssertionError("the weight fixed-point iteration did not converge")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_eot_loss_equals_nll_when_posterior_masses_equal_weights(covariance_type):
    rng = np.random.default_rng(20)
    K, d = 3, 2
    weights, means, covariances = random_parameters(rng, K, d, covariance_type, mean_scale=3.0)
    X = sample(rng, 150, weights, means, covariances, covariance_type)
    alpha = fixed_point_weights(scipy_cost(X, means, covariances, covariance_type), weights)
    relaxed = nll(X, alpha, means, covariances, covariance_type)
    balanced = eot_loss(X, alpha, means, covariances, covariance_type, tol=1e-13, max_iter=100_000)
    assert abs(balanced - relaxed) < 1e-10
    # Control: with the sampling weights (not the fixed point) the gap is visible.
    gap = eot_loss(X, weights, means, covariances, covariance_type, tol=1e-13, max_iter=100_000) - nll(
        X, weights, means, covariances, covariance_type
    )
    assert gap > 1e-8


@pytest.mark.parametrize("epsilon", [1.0, 0.4, 2.5])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_eot_loss_equals_free_energy_of_pot_plan(covariance_type, epsilon):
    X, weights, means, covariances = problem(30, covariance_type)
    cost = scipy_cost(X, means, covariances, covariance_type)
    n = cost.shape[0]
    pot_plan = ot.bregman.sinkhorn_log(np.full(n, 1 / n), weights, cost, epsilon, stopThr=1e-14, numItermax=100_000)
    expected = free_energy(pot_plan, cost, weights, epsilon)
    value = eot_loss(X, weights, means, covariances, covariance_type, epsilon, tol=1e-13, max_iter=100_000)
    assert value == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("max_iter", [1, 3, 10_000])
def test_balanced_value_is_the_free_energy_of_the_returned_plan(max_iter):
    # Also when Sinkhorn stops early and the rows are far from 1/n: the value is F at that
    # plan (not a dual bound), which the estimator's history relies on.
    X, weights, means, covariances = problem(32, "full")
    cost = scipy_cost(X, means, covariances, "full")
    for epsilon in (1.0, 0.3):
        value, result = balanced_value(cost, weights, epsilon, tol=1e-12, max_iter=max_iter, warn=False)
        assert value == pytest.approx(free_energy(result.plan, cost, weights, epsilon), rel=1e-12, abs=1e-13)
        if max_iter == 1:
            assert result.marginal_error > 1e-3


def test_eot_loss_warns_when_sinkhorn_stops_early():
    X, weights, means, covariances = problem(31, "full")
    with pytest.warns(SinkhornConvergenceWarning):
        value = eot_loss(X, weights, means, covariances, tol=1e-15, max_iter=2)
    assert np.isfinite(value)


# --------------------------------------------------------------------------- bad input
def _good():
    X, weights, means, covariances = problem(40, "full", n=10, K=2, d=2)
    return {"X": X, "weights": weights, "means": means, "covariances": covariances}


def _with(**changes):
    arguments = _good()
    arguments.update(changes)
    return arguments


BAD_INPUTS = [
    (lambda: _with(X=np.where(np.eye(10, 2) > 0, np.nan, _good()["X"])), "NaN"),
    (lambda: _with(X=np.where(np.eye(10, 2) > 0, np.inf, _good()["X"])), "inf"),
    (lambda: _with(X=_good()["X"][:, 0]), "2-D"),
    (lambda: _with(weights=np.array([1.2, -0.2])), "positive"),
    (lambda: _with(weights=np.array([0.2, 0.3, 0.5])), "length"),
    (lambda: _with(weights=np.array([0.3, 0.3])), "sum to 1"),
    (lambda: _with(means=np.zeros((2, 3))), "means"),
    (lambda: _with(means=np.zeros(2)), "means"),
    (lambda: _with(covariances=np.ones((2, 2, 2))), "positive definite"),
    (lambda: _with(covariances=np.ones((3, 2, 2))), "shape"),
    (lambda: _with(covariances=np.array([[[1.0, 0.5], [0.0, 1.0]]] * 2)), "symmetric"),
    (lambda: {**_good(), "covariance_type": "banded"}, "covariance_type"),
    (lambda: {**_good(), "epsilon": 0.0}, "epsilon"),
    (lambda: {**_good(), "epsilon": -2.0}, "epsilon"),
    (lambda: {**_good(), "epsilon": np.nan}, "epsilon"),
]


@pytest.mark.parametrize("function", [nll, eot_loss], ids=["nll", "eot_loss"])
@pytest.mark.parametrize("make_arguments, word", BAD_INPUTS)
def test_bad_input_raises_value_error_naming_the_problem(function, make_arguments, word):
    with pytest.raises(ValueError, match=word):
        function(**make_arguments())
