"""Metrics against brute force, closed forms and scikit-learn.

References: enumeration of all permutations for the matched error, the 1-D quantile
formula ``W2^2 = int_0^1 |F^-1(t) - G^-1(t)|^2 dt`` and ``scipy.optimize.linprog`` for W2,
``sklearn.metrics`` for ARI/NMI.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from sinkhorn_em import ari, matched_parameter_error, nmi, w2_squared


def random_parameters(seed, K=4, d=3):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((K, d)) * 3
    factors = rng.standard_normal((K, d, d))
    covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(d)
    return means, covariances


def brute_force_error(means_true, means_est, covariances_true=None, covariances_est=None):
    """``min over permutations pi of sqrt(mean_k ||mu_k - mu^_pi(k)||^2 + ||S_k - S^_pi(k)||_F^2)``."""
    K = len(means_true)
    best = np.inf
    for perm in itertools.permutations(range(K)):
        total = sum(np.sum((means_true[k] - means_est[perm[k]]) ** 2) for k in range(K))
        if covariances_true is not None:
            total += sum(np.sum((covariances_true[k] - covariances_est[perm[k]]) ** 2) for k in range(K))
        best = min(best, np.sqrt(total / K))
    return best


# --------------------------------------------------------------------------- matched error
@pytest.mark.parametrize("with_covariances", [False, True])
def test_matched_parameter_error_equals_brute_force(with_covariances):
    for seed in range(5):
        means_true, cov_true = random_parameters(seed)
        means_est, cov_est = random_parameters(100 + seed)
        covs = (cov_true, cov_est) if with_covariances else (None, None)
        error, permutation = matched_parameter_error(means_true, means_est, *covs)
        assert error == pytest.approx(brute_force_error(means_true, means_est, *covs), rel=1e-12)
        # The returned permutation achieves the returned error.
        achieved = np.sum((means_true - means_est[permutation]) ** 2)
        if with_covariances:
            achieved += np.sum((cov_true - cov_est[permutation]) ** 2)
        assert error == pytest.approx(np.sqrt(achieved / len(means_true)), rel=1e-12)
        assert sorted(permutation) == list(range(len(means_true)))


def test_matched_parameter_error_is_zero_for_a_permuted_copy():
    means, covariances = random_parameters(1)
    perm = np.array([2, 0, 3, 1])
    error, permutation = matched_parameter_error(means, means[perm], covariances, covariances[perm])
    assert error == 0.0
    # true component k sits at position permutation[k] of the estimate
    np.testing.assert_array_equal(perm[permutation], np.arange(4))


def test_matched_parameter_error_is_invariant_to_permuting_the_estimate():
    rng = np.random.default_rng(2)
    means_true, cov_true = random_parameters(2)
    means_est, cov_est = random_parameters(3)
    reference, _ = matched_parameter_error(means_true, means_est, cov_true, cov_est)
    for _ in range(5):
        perm = rng.permutation(4)
        error, _ = matched_parameter_error(means_true, means_est[perm], cov_true, cov_est[perm])
        assert error == pytest.approx(reference, rel=1e-14)


def test_matched_parameter_error_accepts_1d_means():
    error, permutation = matched_parameter_error([1.0, -1.0], [-1.5, 1.25])
    assert error == pytest.approx(np.sqrt((0.25**2 + 0.5**2) / 2), rel=1e-14)
    np.testing.assert_array_equal(permutation, [1, 0])


def test_matched_parameter_error_rejects_mismatched_input():
    means, covariances = random_parameters(4)
    with pytest.raises(ValueError, match="shape"):
        matched_parameter_error(means, means[:3])
    with pytest.raises(ValueError, match="both"):
        matched_parameter_error(means, means, covariances, None)


# --------------------------------------------------------------------------- W2
def w2_squared_1d_quantiles(weights_a, points_a, weights_b, points_b):
    """``int_0^1 (F_a^-1(t) - F_b^-1(t))^2 dt`` for discrete measures on the line."""
    order_a, order_b = np.argsort(points_a), np.argsort(points_b)
    xa, wa = np.asarray(points_a)[order_a], np.asarray(weights_a)[order_a]
    xb, wb = np.asarray(points_b)[order_b], np.asarray(weights_b)[order_b]
    cum_a, cum_b = np.cumsum(wa), np.cumsum(wb)
    breaks = np.unique(np.concatenate([[0.0], cum_a, cum_b]))
    breaks = breaks[breaks <= 1.0]
    total = 0.0
    for left, right in zip(breaks[:-1], breaks[1:]):
        mid = 0.5 * (left + right)
        qa = xa[min(np.searchsorted(cum_a, mid), len(xa) - 1)]
        qb = xb[min(np.searchsorted(cum_b, mid), len(xb) - 1)]
        total += (right - left) * (qa - qb) ** 2
    return total


def test_w2_squared_equals_quantile_formula_for_two_atom_measures():
    rng = np.random.default_rng(5)
    for _ in range(20):
        p, q = rng.uniform(0.05, 0.95, size=2)
        points_a, points_b = rng.normal(scale=3, size=2), rng.normal(scale=3, size=2)
        weights_a, weights_b = np.array([p, 1 - p]), np.array([q, 1 - q])
        expected = w2_squared_1d_quantiles(weights_a, points_a, weights_b, points_b)
        close_to_expected = pytest.approx(expected, rel=1e-10, abs=1e-12)
        assert w2_squared(weights_a, points_a, weights_b, points_b) == close_to_expected
        # Column vectors (K, 1) are the same measures.
        assert w2_squared(weights_a, points_a[:, None], weights_b, points_b[:, None]) == close_to_expected


def test_w2_squared_of_the_symmetric_model_has_the_textbook_value():
    # alpha d_theta + (1-alpha) d_-theta vs the same with theta*: mass moves by |theta - theta*|.
    theta, theta_star, alpha = 0.7, 1.3, 0.35
    value = w2_squared([alpha, 1 - alpha], [theta, -theta], [alpha, 1 - alpha], [theta_star, -theta_star])
    assert value == pytest.approx((theta - theta_star) ** 2, rel=1e-12)


def test_w2_squared_equals_linear_programme_in_2d():
    rng = np.random.default_rng(6)
    for _ in range(5):
        a, b = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(4))
        xa, xb = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
        cost = ((xa[:, None, :] - xb[None, :, :]) ** 2).sum(-1)
        rows = np.kron(np.eye(3), np.ones(4))
        cols = np.kron(np.ones(3), np.eye(4))
        lp = linprog(
            cost.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs"
        )
        assert w2_squared(a, xa, b, xb) == pytest.approx(lp.fun, rel=1e-8, abs=1e-12)


def test_w2_squared_is_zero_for_identical_measures_and_symmetric():
    a, xa = np.array([0.2, 0.8]), np.array([[0.0, 1.0], [2.0, -1.0]])
    b, xb = np.array([0.6, 0.4]), np.array([[1.0, 1.0], [-2.0, 0.5]])
    assert w2_squared(a, xa, a, xa) == pytest.approx(0.0, abs=1e-14)
    assert w2_squared(a, xa, b, xb) == pytest.approx(w2_squared(b, xb, a, xa), rel=1e-12)


def test_w2_squared_rejects_unequal_masses():
    with pytest.raises(ValueError, match="mass"):
        w2_squared([0.5, 0.5], [0.0, 1.0], [0.5, 0.6], [0.0, 1.0])


# --------------------------------------------------------------------------- ARI / NMI
def contingency(labels_a, labels_b) -> np.ndarray:
    """Counts n_ij of points with label i in ``labels_a`` and j in ``labels_b``."""
    _, a = np.unique(labels_a, return_inverse=True)
    _, b = np.unique(labels_b, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    return table


def ari_from_counts(labels_a, labels_b) -> float:
    """Hubert & Arabie (1985): (sum C(n_ij, 2) - E) / (mean of the marginal sums - E), E their product / C(n, 2)."""
    table = contingency(labels_a, labels_b)

    def pairs(x):
        return float(np.sum(x * (x - 1) / 2))

    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(table.sum())
    expected = rows * cols / total
    return (index - expected) / ((rows + cols) / 2 - expected)


def nmi_from_counts(labels_a, labels_b) -> float:
    """I(A; B) / ((H(A) + H(B)) / 2) from the joint frequencies (natural logarithms)."""
    joint = contingency(labels_a, labels_b) / len(labels_a)
    pa, pb = joint.sum(1), joint.sum(0)
    nonzero = joint > 0
    mutual = np.sum(joint[nonzero] * np.log(joint[nonzero] / np.outer(pa, pb)[nonzero]))

    def entropy(p):
        return -np.sum(p * np.log(p))

    return mutual / ((entropy(pa) + entropy(pb)) / 2)


def test_ari_and_nmi_equal_their_definitions():
    rng = np.random.default_rng(7)
    for _ in range(5):
        truth = rng.integers(0, 4, size=60)
        noisy = np.where(rng.random(60) < 0.3, rng.integers(0, 5, size=60), truth)
        assert ari(truth, noisy) == pytest.approx(ari_from_counts(truth, noisy), rel=1e-12)
        assert nmi(truth, noisy) == pytest.approx(nmi_from_counts(truth, noisy), rel=1e-12)
        assert ari(truth, noisy) < 1.0


def test_ari_of_a_hand_computed_example():
    # Contingency [[2, 1], [0, 2]]: index 1 + 1 = 2, row pairs 3 + 1 = 4, column pairs 1 + 3 = 4,
    # 10 pairs; E = 1.6; ARI = (2 - 1.6) / (4 - 1.6) = 1/6.
    assert ari([0, 0, 0, 1, 1], [0, 0, 1, 1, 1]) == pytest.approx(1 / 6, rel=1e-12)


def test_ari_and_nmi_ignore_label_names():
    truth = np.repeat([0, 1, 2], 10)
    renamed = np.array([7, 3, 5])[truth]
    assert ari(truth, renamed) == pytest.approx(1.0)
    assert nmi(truth, renamed) == pytest.approx(1.0)
    assert isinstance(ari(truth, renamed), float) and isinstance(nmi(truth, renamed), float)


@pytest.mark.parametrize("seed", range(5))
def test_w2_squared_equals_pot_network_simplex_in_several_dimensions(seed):
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(seed)
    points_a, points_b = rng.normal(scale=2, size=(4, 3)), rng.normal(scale=2, size=(6, 3))
    weights_a, weights_b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(6))
    expected = ot.emd2(weights_a, weights_b, ot.dist(points_a, points_b, metric="sqeuclidean"))
    assert w2_squared(weights_a, points_a, weights_b, points_b) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_w2_squared_rejects_weights_that_do_not_match_the_atoms():
    with pytest.raises(ValueError, match="one weight per atom"):
        w2_squared([0.5, 0.5], [0.0, 1.0, 2.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="same mass"):
        w2_squared([0.5, 0.5], [0.0, 1.0], [0.7], [0.0])
