r"""Rates of linear convergence on the scale the report and the figures compare: iterations per decade."""

from __future__ import annotations

import numpy as np

__all__ = ["iterations_per_decade"]


def iterations_per_decade(rate) -> np.ndarray:
    r"""Iterations a linear rate needs to divide the error by 10: :math:`-1/\log_{10}(\text{rate})`.

    Unlike the rate itself (bounded by 1, so a ratio of two slow rates is always near 1),
    this scale treats fast and slow convergence alike: twice as many iterations per decade is
    twice as slow whatever the rates. A rate of 0 (exact in one step) gives 0, a rate >= 1
    (no linear convergence) :math:`+\infty`.
    """
    rate = np.asarray(rate, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(rate >= 1, np.inf, np.where(rate <= 0, 0.0, -1.0 / np.log10(np.clip(rate, 1e-300, 1))))
