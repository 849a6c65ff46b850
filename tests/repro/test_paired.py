"""Paired tests and intervals (sinkhorn_em_repro.paired) against scipy and statsmodels on known data."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from sinkhorn_em_repro.paired import (
    clustered_mean_difference,
    mcnemar_exact,
    paired_mean_difference,
    paired_proportion_difference,
    stratified_mcnemar,
    wilcoxon_p_value,
)


@pytest.mark.parametrize("b, c", [(12, 2), (3, 3), (0, 7), (40, 25), (1, 0)])
def test_mcnemar_exact_matches_statsmodels_and_the_sign_test(b, c):
    expected = mcnemar([[30, b], [c, 10]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    # The exact sign test on the discordant pairs is the same test.
    assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_mcnemar_without_discordant_pairs_is_one_and_vectorises():
    assert mcnemar_exact(0, 0) == 1.0
    np.testing.assert_allclose(
        mcnemar_exact([12, 0], [2, 0]), [mcnemar([[0, 12], [2, 0]], exact=True).pvalue, 1.0], rtol=1e-12
    )


def test_stratified_mcnemar_pools_discordant_pairs():
    assert stratified_mcnemar([3, 4, 5], [1, 0, 2]) == pytest.approx(stats.binomtest(12, 15, 0.5).pvalue, rel=1e-9)


def _newcombe_from_statsmodels(a, b, c, d):
    """Newcombe's method 10 assembled from statsmodels' Wilson intervals (an independent implementation)."""
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, method="wilson")
    l2, u2 = proportion_confint(a + c, n, method="wilson")
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / np.sqrt(margins) if margins else 0.0
    delta = np.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    eps = np.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return p1 - p2, p1 - p2 - delta, p1 - p2 + eps


@pytest.mark.parametrize("table", [(36, 12, 2, 0), (263, 15, 3, 0), (2, 1, 1, 2), (4, 9, 1, 3), (0, 0, 5, 15)])
def test_paired_proportion_interval_matches_an_independent_assembly(table):
    np.testing.assert_allclose(paired_proportion_difference(*table), _newcombe_from_statsmodels(*table), atol=1e-12)


def test_paired_proportion_interval_covers_at_about_the_nominal_rate():
    # Correlated pairs: P(both) = 0.3, P(only first) = 0.25, P(only second) = 0.1, P(neither) = 0.35.
    rng = np.random.default_rng(0)
    probabilities = np.array([0.3, 0.25, 0.1, 0.35])
    counts = rng.multinomial(60, probabilities, size=4000)
    theta, low, high = paired_proportion_difference(*counts.T)
    truth = probabilities[1] - probabilities[2]
    coverage = np.mean((low <= truth) & (truth <= high))
    assert 0.93 <= coverage <= 0.975
    np.testing.assert_allclose(theta, (counts[:, 1] - counts[:, 2]) / 60)


def test_paired_mean_difference_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(1)
    x = rng.normal(0.6, 0.1, 25)
    y = x - 0.02 + rng.normal(0, 0.05, 25)
    found = paired_mean_difference(x, y)
    expected = stats.ttest_rel(x, y)
    assert found["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)
    low, high = DescrStatsW(x - y).tconfint_mean(0.05)
    assert (found["low"], found["high"]) == pytest.approx((low, high), rel=1e-10)
    assert found["mean"] == pytest.approx(np.mean(x - y)) and found["n_pairs"] == 25


def test_paired_mean_difference_edge_cases():
    assert paired_mean_difference([1.0, 2.0], [0.5, 1.5])["p_value"] == 0.0
    assert paired_mean_difference([1.0, 2.0], [1.0, 2.0])["p_value"] == 1.0
    assert np.isnan(paired_mean_difference([1.0], [0.0])["p_value"])
    assert paired_mean_difference([1.0, np.nan, 3.0], [0.0, 1.0, 1.5])["n_pairs"] == 2


def test_clustered_mean_difference_tests_the_cluster_means():
    rng = np.random.default_rng(2)
    clusters = np.repeat(["w1", "w2", "w3", "w4"], 10)
    x = rng.normal(0.5, 0.1, 40)
    y = x - np.repeat([0.05, 0.0, 0.1, 0.02], 10) + rng.normal(0, 0.02, 40)
    found = clustered_mean_difference(x, y, clusters)
    means = [np.mean((x - y)[clusters == name]) for name in ("w1", "w2", "w3", "w4")]
    expected = stats.ttest_1samp(means, 0.0)
    assert found["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)
    assert found["n_clusters"] == 4 and found["n_pairs"] == 40
    # With one cluster it is the paired t-test over the pairs.
    single = clustered_mean_difference(x, y, np.repeat("w", 40))
    assert single["p_value"] == pytest.approx(stats.ttest_rel(x, y).pvalue, rel=1e-10)


def test_wilcoxon_matches_scipy():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, 30), rng.normal(0.3, 1, 30)
    assert wilcoxon_p_value(x, y) == pytest.approx(stats.wilcoxon(x - y).pvalue, rel=1e-12)
    assert wilcoxon_p_value([1.0, 2.0], [1.0, 2.0]) == 1.0
