"""Gaussian building blocks against scipy and direct weighted statistics.

References: ``scipy.stats.multivariate_normal.logpdf`` for the cost, ``np.cov`` with
``aweights`` and explicit sums for the M-step, ``np.linalg.inv`` for precisions.
"""

from __future__ import annotations

import numpy as np
import pytest

from references import as_full, scipy_cost
from sinkhorn_em import estimate_gaussian_parameters, gaussian_cost, log_gaussian_density
from sinkhorn_em.gaussian import MomentFeatures, n_covariance_parameters, precision_cholesky

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
# gaussian.py switches from the moment expansion to a loop over components above d = 16.
DIMENSIONS = (1, 2, 5, 20)


def random_covariances(rng, K, d, covariance_type):
    factors = rng.standard_normal((K, d, d))
    full = factors @ np.swapaxes(factors, 1, 2) / d + 0.4 * np.eye(d)
    return {
        "full": full,
        "diag": rng.uniform(0.2, 3.0, size=(K, d)),
        "spherical": rng.uniform(0.2, 3.0, size=K),
        "tied": full[0],
    }[covariance_type]


def cost_problem(seed, d, covariance_type, offset=0.0, n=40, K=3):
    rng = np.random.default_rng(seed)
    means = offset + 2.0 * rng.standard_normal((K, d))
    X = offset + 2.5 * rng.standard_normal((n, d))
    return X, means, random_covariances(rng, K, d, covariance_type)


# --------------------------------------------------------------------------- cost
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", DIMENSIONS)
def test_gaussian_cost_equals_scipy_negative_logpdf(covariance_type, d):
    for seed in range(2):
        X, means, covariances = cost_problem(seed, d, covariance_type)
        expected = scipy_cost(X, means, covariances, covariance_type)
        cost = gaussian_cost(X, means, covariances, covariance_type)
        assert cost.shape == (X.shape[0], means.shape[0])
        np.testing.assert_allclose(cost, expected, rtol=1e-11, atol=1e-11)
        # Precomputed moment features (the path the fit loop uses) give the same numbers.
        features = MomentFeatures.from_data(X)
        np.testing.assert_allclose(
            gaussian_cost(features, means, covariances, covariance_type), expected, rtol=1e-11, atol=1e-11
        )
        np.testing.assert_allclose(
            log_gaussian_density(X, means, covariances, covariance_type), -expected, rtol=1e-11, atol=1e-11
        )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precomputed_precision_cholesky_gives_the_same_cost(covariance_type):
    X, means, covariances = cost_problem(3, 3, covariance_type)
    prec_chol = precision_cholesky(covariances, covariance_type)
    np.testing.assert_allclose(
        gaussian_cost(X, means, None, covariance_type, prec_chol=prec_chol),
        scipy_cost(X, means, covariances, covariance_type),
        rtol=1e-11,
        atol=1e-11,
    )


# Data 1e5 away from the origin, unit-scale spread. Through MomentFeatures.from_data
# (centred on the data mean, as inside fit) the cost is exact to rounding.
OFFSET = 1e5


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [3, 20])
def test_gaussian_cost_far_from_origin_through_centred_features(covariance_type, d):
    X, means, covariances = cost_problem(4, d, covariance_type, offset=OFFSET)
    expected = scipy_cost(X, means, covariances, covariance_type)
    cost = gaussian_cost(MomentFeatures.from_data(X), means, covariances, covariance_type)
    np.testing.assert_allclose(cost, expected, rtol=1e-10, atol=1e-10)


def _far_cases():
    # Raw arrays far from the origin: the moment expansion x'Px - 2x'Pmu + mu'Pmu would cancel
    # terms of size |x|^2/sigma^2 ~ 1e10 unless the data are centred first (a past bug).
    for d in (3, 20):
        for covariance_type in COVARIANCE_TYPES:
            yield pytest.param(covariance_type, d, id=f"{covariance_type}-d{d}")


@pytest.mark.parametrize("covariance_type, d", list(_far_cases()))
def test_gaussian_cost_far_from_origin_on_raw_array(covariance_type, d):
    X, means, covariances = cost_problem(4, d, covariance_type, offset=OFFSET)
    expected = scipy_cost(X, means, covariances, covariance_type)
    np.testing.assert_allclose(gaussian_cost(X, means, covariances, covariance_type), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precision_cholesky_factors_the_inverse_covariance(covariance_type):
    rng = np.random.default_rng(5)
    K, d = 3, 4
    covariances = random_covariances(rng, K, d, covariance_type)
    factor = precision_cholesky(covariances, covariance_type)
    full = as_full(covariances, covariance_type, K, d)
    if covariance_type in ("full", "tied"):
        stack = factor[None] if covariance_type == "tied" else factor
        precisions = stack @ np.swapaxes(stack, 1, 2)
        np.testing.assert_allclose(precisions, np.linalg.inv(full[: len(stack)]), rtol=1e-10, atol=1e-12)
        # Triangular, as in scikit-learn's precisions_cholesky_.
        np.testing.assert_allclose(stack, np.triu(stack), atol=0)
    else:
        diag = np.broadcast_to(factor[:, None] if covariance_type == "spherical" else factor, (K, d))
        np.testing.assert_allclose(diag**2, 1.0 / np.diagonal(full, axis1=1, axis2=2), rtol=1e-13)


@pytest.mark.parametrize(
    "covariances, covariance_type",
    [
        (np.array([[[1.0, 2.0], [2.0, 1.0]]]), "full"),
        (np.array([[1.0, 1.0], [1.0, 1.0]]), "tied"),
        (np.array([[1.0, 0.0]]), "diag"),
        (np.array([-1.0]), "spherical"),
    ],
)
def test_precision_cholesky_rejects_singular_covariances_with_advice(covariances, covariance_type):
    with pytest.raises(ValueError, match="reg_covar"):
        precision_cholesky(covariances, covariance_type)


def test_unknown_covariance_type_is_rejected():
    with pytest.raises(ValueError, match="covariance_type"):
        gaussian_cost(np.zeros((3, 2)), np.zeros((1, 2)), np.ones(1), "isotropic")
    with pytest.raises(ValueError, match="covariance_type"):
        estimate_gaussian_parameters(np.zeros((3, 2)), np.ones((3, 1)), 0.0, "isotropic")


# --------------------------------------------------------------------------- M-step
def direct_estimates(X, weights, reg_covar, covariance_type):
    """Weighted masses, means and covariances by ``np.cov(aweights=...)`` and explicit sums."""
    n, d = X.shape
    K = weights.shape[1]
    nk = weights.sum(axis=0)
    means = np.stack([np.average(X, axis=0, weights=weights[:, k]) for k in range(K)])
    # bias=True: normalise by the total weight sum_i w_ik, the maximum-likelihood scatter.
    scatter = np.stack([np.atleast_2d(np.cov(X.T, aweights=weights[:, k], bias=True)) for k in range(K)])
    if covariance_type == "full":
        covariances = scatter + reg_covar * np.eye(d)
    elif covariance_type == "tied":
        covariances = np.einsum("k,kab->ab", nk, scatter) / nk.sum() + reg_covar * np.eye(d)
    elif covariance_type == "diag":
        covariances = np.diagonal(scatter, axis1=1, axis2=2) + reg_covar
    else:
        covariances = np.diagonal(scatter, axis1=1, axis2=2).mean(axis=1) + reg_covar
    return nk, means, covariances


def m_step_problem(seed, d, kind, offset=0.0, n=80, K=3):
    rng = np.random.default_rng(seed)
    X = offset + rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, size=d)
    if kind == "responsibilities":  # rows sum to 1 (EM)
        weights = rng.dirichlet(np.full(K, 0.5), size=n)
    else:  # n times a Sinkhorn plan: rows only close to 1
        weights = rng.dirichlet(np.full(K, 0.5), size=n) * rng.uniform(0.7, 1.3, size=(n, 1))
    return X, weights


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 3, 20])
@pytest.mark.parametrize("kind", ["responsibilities", "unnormalised"])
def test_estimate_gaussian_parameters_equals_direct_weighted_statistics(covariance_type, d, kind):
    X, weights = m_step_problem(6, d, kind)
    expected = direct_estimates(X, weights, 1e-3, covariance_type)
    for data in (X, MomentFeatures.from_data(X)):
        # Known column sums (as for a balanced plan) must give the same estimates.
        for masses in (None, weights.sum(axis=0)):
            nk, means, covariances = estimate_gaussian_parameters(data, weights, 1e-3, covariance_type, masses=masses)
            # nk carries a 10 * machine-eps guard against empty components.
            np.testing.assert_allclose(nk, expected[0], rtol=1e-13, atol=1e-13)
            np.testing.assert_allclose(means, expected[1], rtol=1e-11, atol=1e-11)
            np.testing.assert_allclose(covariances, expected[2], rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_estimate_far_from_origin_through_centred_features(covariance_type):
    X, weights = m_step_problem(7, 3, "responsibilities", offset=OFFSET)
    expected = direct_estimates(X, weights, 0.0, covariance_type)
    _, means, covariances = estimate_gaussian_parameters(MomentFeatures.from_data(X), weights, 0.0, covariance_type)
    np.testing.assert_allclose(means, expected[1], rtol=1e-12)
    np.testing.assert_allclose(covariances, expected[2], rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_estimate_far_from_origin_on_raw_array(covariance_type):
    X, weights = m_step_problem(7, 3, "responsibilities", offset=OFFSET)
    expected = direct_estimates(X, weights, 0.0, covariance_type)
    _, _, covariances = estimate_gaussian_parameters(X, weights, 0.0, covariance_type)
    np.testing.assert_allclose(covariances, expected[2], rtol=1e-9)


def test_weighted_estimates_are_the_maximisers_of_the_weighted_log_likelihood():
    # The M-step must minimise sum_ik w_ik C_ik over (mu, Sigma): any perturbation raises it.
    rng = np.random.default_rng(8)
    X, weights = m_step_problem(8, 2, "responsibilities")
    _, means, covariances = estimate_gaussian_parameters(X, weights, 0.0, "full")
    best = np.sum(weights * gaussian_cost(X, means, covariances, "full"))
    for _ in range(10):
        delta = 0.05 * rng.standard_normal(means.shape)
        assert np.sum(weights * gaussian_cost(X, means + delta, covariances, "full")) > best
        bump = 0.05 * rng.standard_normal(covariances.shape)
        bump = bump @ np.swapaxes(bump, 1, 2)
        assert np.sum(weights * gaussian_cost(X, means, covariances + bump, "full")) > best


@pytest.mark.parametrize("covariance_type, per_component", [("full", 10), ("diag", 4), ("spherical", 1), ("tied", 0)])
def test_n_covariance_parameters(covariance_type, per_component):
    K, d = 3, 4
    shared = 10 if covariance_type == "tied" else 0
    assert n_covariance_parameters(K, d, covariance_type) == K * per_component + shared


# --------------------------------------------------------------------------- covariance classes
# Each class of _covariance against independent references, on the design the fit loop uses
# (moment features, or the per-component loop for full/tied above d = 16).
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [3, 20])
def test_each_covariance_class_agrees_with_scipy_and_scikit_learn(covariance_type, d):
    from scipy.stats import multivariate_normal
    from sklearn.mixture import GaussianMixture
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky, _estimate_gaussian_parameters

    from sinkhorn_em._covariance import COVARIANCE_TYPES as CLASSES
    from sinkhorn_em._design import make_design

    covariance = CLASSES[covariance_type]
    assert covariance.name == covariance_type
    rng = np.random.default_rng(11 + d)
    K, n = 3, 150
    X = 3.0 + rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, size=d)
    means = X[rng.choice(n, size=K, replace=False)]
    covariances = random_covariances(rng, K, d, covariance_type)
    assert covariance.check(covariances, K, d).shape == covariance.shape(K, d) == covariances.shape

    prec_chol = covariance.precision_cholesky(covariances)
    np.testing.assert_allclose(prec_chol, _compute_precision_cholesky(covariances, covariance_type), rtol=1e-10)

    # Cost of two blocks of samples against scipy's log-density.
    design = make_design(X, covariance_type)
    coefficients = design.coefficients(means[None], covariances[None])
    cost = np.concatenate([design.cost(coefficients, cols)[0] for cols in (slice(0, 70), slice(70, n))], axis=1).T
    full = as_full(covariances, covariance_type, K, d)
    expected = -np.stack([multivariate_normal(means[k], full[k]).logpdf(X) for k in range(K)], axis=1)
    np.testing.assert_allclose(cost, expected, rtol=1e-11, atol=1e-11)

    # M-step from statistics summed over the two blocks against scikit-learn's.
    resp = rng.dirichlet(np.full(K, 0.5), size=n)
    stats = sum(design.statistics(resp[cols].T[None], cols) for cols in (slice(0, 70), slice(70, n)))
    nk, got_means, got_covariances = design.parameters(stats, 1e-4)
    ref_nk, ref_means, ref_covariances = _estimate_gaussian_parameters(X, resp, 1e-4, covariance_type)
    np.testing.assert_allclose(nk[0], ref_nk, rtol=1e-12)
    np.testing.assert_allclose(got_means[0], ref_means, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(got_covariances[0], ref_covariances, rtol=1e-10, atol=1e-11)

    # Parameter count and sampling as scikit-learn's GaussianMixture with the same parameters.
    reference = GaussianMixture(K, covariance_type=covariance_type, random_state=4)
    reference.weights_, reference.means_, reference.covariances_ = np.array([0.2, 0.3, 0.5]), means, covariances
    reference.precisions_cholesky_ = _compute_precision_cholesky(covariances, covariance_type)
    assert K - 1 + K * d + covariance.n_parameters(K, d) == reference._n_parameters()
    precisions = as_full(covariance.precisions(prec_chol), covariance_type, K, d)
    np.testing.assert_allclose(precisions @ full, np.broadcast_to(np.eye(d), (K, d, d)), atol=1e-10)
    sampler = np.random.RandomState(4)
    counts = sampler.multinomial(200, reference.weights_)
    drawn = np.vstack(
        [covariance.sample_component(sampler, means[k], covariances, k, int(c)) for k, c in enumerate(counts)]
    )
    np.testing.assert_allclose(drawn, reference.sample(200)[0], rtol=1e-12, atol=1e-12)


def test_unknown_covariance_class_lists_the_choices():
    from sinkhorn_em._covariance import get_covariance

    with pytest.raises(ValueError, match=r"one of \('full', 'diag', 'spherical', 'tied'\)"):
        get_covariance("isotropic")
