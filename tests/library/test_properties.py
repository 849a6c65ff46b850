"""Property tests (hypothesis) over shapes, numbers of components, covariance types and eps.

Each example draws a seed and sizes; the arrays come from numpy's generator with that
seed, which keeps shrinking meaningful and the examples cheap. ``derandomize`` makes the
examples the same on every run (CI must not be flaky) and ``database=None`` keeps failing
examples from being replayed from a local database, so every machine runs the same cases.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp as scipy_logsumexp

from references import scipy_cost
from sinkhorn_em import (
    EOTGaussianMixture,
    SinkhornConvergenceWarning,
    eot_loss,
    gaussian_cost,
    nll,
    semi_relaxed_plan,
    sinkhorn_log,
)

PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None)

covariance_types = st.sampled_from(["full", "diag", "spherical", "tied"])
epsilons = st.floats(min_value=0.05, max_value=5.0)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def random_parameters(rng, K, d, covariance_type):
    weights = rng.dirichlet(np.full(K, 2.0))
    # Keep every weight representable in log space with a useful margin.
    weights = (weights + 1e-3) / (weights + 1e-3).sum()
    means = rng.standard_normal((K, d)) * rng.uniform(0.1, 5.0)
    factors = rng.standard_normal((K, d, d))
    full = factors @ np.swapaxes(factors, 1, 2) / d + rng.uniform(0.05, 1.0) * np.eye(d)
    covariances = {
        "full": full,
        "diag": rng.uniform(0.05, 3.0, size=(K, d)),
        "spherical": rng.uniform(0.05, 3.0, size=K),
        "tied": full[0],
    }[covariance_type]
    return weights, means, covariances


@st.composite
def mixture_problems(draw, min_samples=1):
    K = draw(st.integers(1, 5))
    n = draw(st.integers(max(K, min_samples), 40))
    d = draw(st.integers(1, 4))
    covariance_type = draw(covariance_types)
    rng = np.random.default_rng(draw(seeds))
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 4.0)
    return X, covariance_type, random_parameters(rng, K, d, covariance_type)


@PROPERTY_SETTINGS
@given(problem=mixture_problems())
def test_costs_are_finite_and_match_the_density_normalisation(problem):
    X, covariance_type, (weights, means, covariances) = problem
    cost = gaussian_cost(X, means, covariances, covariance_type)
    assert cost.shape == (X.shape[0], means.shape[0])
    assert np.all(np.isfinite(cost))
    # -log N is at least the negative log of the density's peak, 0.5 log det(2 pi Sigma).
    d = X.shape[1]
    log_dets = {
        "full": lambda c: np.linalg.slogdet(c)[1],
        "tied": lambda c: np.full(means.shape[0], np.linalg.slogdet(c)[1]),
        "diag": lambda c: np.log(c).sum(axis=1),
        "spherical": lambda c: d * np.log(c),
    }[covariance_type](covariances)
    floor = 0.5 * (d * np.log(2 * np.pi) + log_dets)
    assert np.all(cost >= floor[None, :] - 1e-9 * (1 + np.abs(floor[None, :])))


@PROPERTY_SETTINGS
@given(problem=mixture_problems(), epsilon=epsilons)
def test_responsibilities_match_bayes_rule_with_scipy_densities(problem, epsilon):
    # Against an independent posterior: tempered Bayes' rule over scipy's log-densities, its
    # normaliser giving the semi-relaxed value -eps mean_i log sum_k alpha_k N_ik^(1/eps).
    X, covariance_type, (weights, means, covariances) = problem
    log_resp, value = semi_relaxed_plan(gaussian_cost(X, means, covariances, covariance_type), weights, epsilon)
    log_joint = np.log(weights)[None, :] - scipy_cost(X, means, covariances, covariance_type) / epsilon
    log_norm = scipy_logsumexp(log_joint, axis=1)
    expected = log_joint - log_norm[:, None]
    assert np.all(np.abs(log_resp - expected) <= 1e-8 * (1 + np.abs(expected)))
    assert value == pytest.approx(-epsilon * log_norm.mean(), rel=1e-9, abs=1e-9)


@PROPERTY_SETTINGS
@given(problem=mixture_problems(), epsilon=epsilons)
def test_eot_loss_is_at_least_nll(problem, epsilon):
    X, covariance_type, (weights, means, covariances) = problem
    with warnings.catch_warnings():
        # A non-converged solve still returns F at a near-feasible plan, but such an example
        # is useless for the inequality: require convergence instead.
        warnings.simplefilter("error", SinkhornConvergenceWarning)
        balanced = eot_loss(X, weights, means, covariances, covariance_type, epsilon, tol=1e-12, max_iter=50_000)
    relaxed = nll(X, weights, means, covariances, covariance_type, epsilon)
    assert np.isfinite(balanced) and np.isfinite(relaxed)
    # The value is F at a plan whose rows are 1e-12-feasible: allow that much slack.
    assert balanced >= relaxed - 1e-9 * (1 + abs(relaxed))


@PROPERTY_SETTINGS
@given(
    n=st.integers(1, 50),
    K=st.integers(1, 6),
    # cost / epsilon up to 200: POT's reference costs ~0.5 ms per iteration and needs
    # thousands beyond that; the small-epsilon regime is tested in test_sinkhorn.py.
    epsilon=st.floats(0.05, 10.0),
    cost_scale=st.floats(0.01, 10.0),
    seed=seeds,
)
def test_sinkhorn_plan_is_the_plan_of_an_independent_solver(n, K, epsilon, cost_scale, seed):
    # The marginals are the solver's own stopping rule; the property is the solution itself,
    # compared with POT's log-domain Sinkhorn run to 1e-14.
    import ot

    rng = np.random.default_rng(seed)
    a, b = rng.dirichlet(np.ones(n) * 2), rng.dirichlet(np.ones(K) * 2)
    a, b = (a + 1e-4) / (a + 1e-4).sum(), (b + 1e-4) / (b + 1e-4).sum()
    cost = cost_scale * rng.random((n, K))
    result = sinkhorn_log(a, b, cost, epsilon, tol=1e-12, max_iter=100_000)
    assert result.converged
    reference = ot.bregman.sinkhorn_log(a, b, cost, epsilon, stopThr=1e-14, numItermax=200_000)
    assert np.all(np.isfinite(result.plan)) and np.all(result.plan >= 0)
    np.testing.assert_allclose(result.plan, reference, rtol=0, atol=1e-9 * reference.max())


@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(problem=mixture_problems(min_samples=2), method=st.sampled_from(["em", "oem", "sinkhorn"]), epsilon=epsilons)
def test_fitted_model_predicts_probabilities(problem, method, epsilon):
    X, covariance_type, (weights, _, _) = problem
    K = weights.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # three iterations, possibly unconverged: irrelevant here
        model = EOTGaussianMixture(
            K,
            weights=weights,
            method=method,
            covariance_type=covariance_type,
            epsilon=epsilon,
            max_iter=3,
            tol=0,
            reg_covar=1e-3,
            random_state=0,
            track_eot_loss=False,
        ).fit(X)
    # Posterior and log-density of the fitted parameters, recomputed with scipy's densities.
    log_joint = np.log(model.weights_)[None, :] - scipy_cost(X, model.means_, model.covariances_, covariance_type)
    log_density = scipy_logsumexp(log_joint, axis=1)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(log_joint - log_density[:, None]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.score_samples(X), log_density, rtol=1e-9, atol=1e-9)
    assert len(model.history_) == 4 and np.all(np.isfinite(model.history_["objective"]))
