"""Interval statistics against scipy.stats and textbook values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats import binomtest

from sinkhorn_em_repro.intervals import t_interval, wilson_interval


@pytest.mark.parametrize("n", [1, 2, 7, 20, 263])
def test_wilson_interval_matches_scipy(n):
    successes = np.arange(n + 1)
    low, high = wilson_interval(successes, np.full(n + 1, n))
    for k in successes:
        expected = binomtest(int(k), n).proportion_ci(confidence_level=0.95, method="wilson")
        assert low[k] == pytest.approx(expected.low, abs=1e-12)
        assert high[k] == pytest.approx(expected.high, abs=1e-12)


@pytest.mark.parametrize(
    "successes, n, low, high",
    # Newcombe (1998), Statistics in Medicine 17:857, Table II, method 3 (Wilson score).
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_interval_textbook_values(successes, n, low, high):
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_other_confidence_is_wider():
    narrow = wilson_interval(5, 20, confidence=0.8)
    wide = wilson_interval(5, 20, confidence=0.99)
    assert wide[0] < narrow[0] < 0.25 < narrow[1] < wide[1]


@pytest.mark.parametrize("successes, n, confidence", [(1, 0, 0.95), (-1, 5, 0.95), (6, 5, 0.95), (1, 5, 1.0)])
def test_wilson_interval_rejects_bad_input(successes, n, confidence):
    with pytest.raises(ValueError):
        wilson_interval(successes, n, confidence)


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_t_interval_matches_scipy(confidence):
    rng = np.random.default_rng(3)
    samples = [rng.normal(size=n) for n in (2, 3, 10, 41)]
    mean = np.array([s.mean() for s in samples])
    sd = np.array([s.std(ddof=1) for s in samples])
    n = np.array([s.size for s in samples])
    low, high = t_interval(mean, sd, n, confidence)
    for k, s in enumerate(samples):
        expected = stats.t.interval(confidence, s.size - 1, loc=s.mean(), scale=stats.sem(s))
        assert (low[k], high[k]) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_t_interval_single_value_is_undefined_or_collapsed():
    mean, sd, n = pd.Series([0.3, 0.5]), pd.Series([np.nan, 0.1]), pd.Series([1, 4])
    low, high = t_interval(mean, sd, n)
    assert np.isnan(low[0]) and np.isnan(high[0]) and low[1] < 0.5 < high[1]
    low, high = t_interval(mean, sd, n, single_width=0.0)
    assert low[0] == high[0] == 0.3
    assert isinstance(low, pd.Series)


def test_t_interval_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        t_interval(np.array([0.0]), np.array([1.0]), np.array([3]), confidence=1.5)
