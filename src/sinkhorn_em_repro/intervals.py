"""Interval statistics shared by every family: Wilson intervals for success fractions, Student-t for means."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["t_interval", "wilson_interval"]


def wilson_interval(successes, n_trials, confidence: float = 0.95):
    r"""Wilson score interval for a binomial proportion.

    With :math:`\hat p = s / n` and :math:`z = \Phi^{-1}((1 + c) / 2)`,

    .. math:: \frac{\hat p + \frac{z^2}{2n}}{1 + \frac{z^2}{n}} \pm
              \frac{z}{1 + \frac{z^2}{n}} \sqrt{\frac{\hat p (1 - \hat p)}{n} + \frac{z^2}{4 n^2}} .

    Unlike the Wald interval it stays inside [0, 1] and has sensible width at
    :math:`s = 0` or :math:`s = n`, which the sweeps hit often.

    Parameters
    ----------
    successes : int or array_like of int
        Number of successes :math:`s`, ``0 <= s <= n``.
    n_trials : int or array_like of int
        Number of trials :math:`n \ge 1`.
    confidence : float, default 0.95
        Coverage :math:`c` in (0, 1).

    Returns
    -------
    low, high : float or ndarray
        The interval bounds (arrays if the inputs are arrays).
    """
    s = np.asarray(successes, dtype=float)
    n = np.asarray(n_trials, dtype=float)
    _check_confidence(confidence)
    if np.any(n < 1):
        raise ValueError("n_trials must be >= 1: a success fraction needs at least one run.")
    if np.any(s < 0) or np.any(s > n):
        raise ValueError("successes must lie in [0, n_trials].")
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    p_hat = s / n
    denominator = 1.0 + z**2 / n
    centre = (p_hat + z**2 / (2.0 * n)) / denominator
    half_width = z / denominator * np.sqrt(p_hat * (1.0 - p_hat) / n + z**2 / (4.0 * n**2))
    # Clip the rounding error at s = 0 or s = n, where one bound is exactly 0 or 1.
    low = np.clip(centre - half_width, 0.0, 1.0)
    high = np.clip(centre + half_width, 0.0, 1.0)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def t_interval(mean, sd, n, confidence: float = 0.95, *, single_width: float = np.nan):
    r"""Student-t interval for a mean: :math:`\bar x \pm t_{(1+c)/2,\,n-1}\, s / \sqrt n`.

    Parameters
    ----------
    mean, sd, n : array_like
        Sample means, sample standard deviations (``ddof=1``; NaN when ``n = 1``) and sizes.
    confidence : float, default 0.95
        Coverage :math:`c` in (0, 1).
    single_width : float, default NaN
        Half-width reported where ``n = 1`` (no spread to estimate): NaN leaves the
        interval undefined, 0 collapses it onto the single value.

    Returns
    -------
    low, high : ndarray or pandas.Series
        Same type as ``mean``.
    """
    _check_confidence(confidence)
    n = np.asarray(n, dtype=float)
    quantile = stats.t.ppf(0.5 + confidence / 2.0, np.maximum(n - 1.0, 1.0))
    spread = np.nan_to_num(np.asarray(sd, dtype=float), nan=0.0)
    half_width = np.where(n > 1, quantile * spread / np.sqrt(n), single_width)
    return mean - half_width, mean + half_width


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
