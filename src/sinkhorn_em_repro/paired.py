r"""Paired tests and paired effect intervals: methods compared on the same starts, trials or seeds.

When two methods share every start (same data, same seed, same initial parameters), each
start is a pair and the comparison must use the pairs:

* success/failure per start: :func:`mcnemar_exact` (McNemar's exact test = the exact sign
  test on the discordant pairs) with the paired difference of success rates and Newcombe's
  interval (:func:`paired_proportion_difference`);
* a continuous score per start (error, accuracy, ARI): :func:`paired_mean_difference`
  (paired t-test and the Student-t interval of the mean difference), with the Wilcoxon
  signed-rank p-value beside it (:func:`wilcoxon_p_value`) as a check that does not assume
  normal differences;
* pairs nested in datasets (starts within datasets, trials within worms): a stratified
  test. For successes, :func:`stratified_mcnemar` pools the discordant pairs over strata
  (exact: under the null each discordant pair is equally likely to favour either method
  within its stratum, whatever the strata's success rates, so the pooled count of pairs
  favouring one method is Binomial(D, 1/2)). For continuous scores,
  :func:`clustered_mean_difference` averages the paired differences within each cluster and
  tests the cluster means (one-sample t over clusters: the summary-measures form of a
  random-cluster-effect model, whose degrees of freedom are the clusters, not the pairs).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from sinkhorn_em_repro.intervals import wilson_interval

__all__ = [
    "clustered_mean_difference",
    "mcnemar_exact",
    "paired_mean_difference",
    "paired_proportion_difference",
    "stratified_mcnemar",
    "wilcoxon_p_value",
]


def mcnemar_exact(b, c) -> np.ndarray:
    r"""Two-sided p-value of McNemar's exact test from the discordant counts, elementwise.

    ``b``: pairs where the first method succeeds and the second fails; ``c``: the reverse.
    Under the null of equal success probabilities :math:`b \sim \mathrm{Bin}(b + c, 1/2)`;
    :math:`p = \min\{1, 2\, P(X \le \min(b, c))\}`, and 1 without discordant pairs.
    """
    b, c = np.broadcast_arrays(np.asarray(b, dtype=int), np.asarray(c, dtype=int))
    if (b < 0).any() or (c < 0).any():
        raise ValueError("discordant counts must be >= 0.")
    p = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    p = np.where(b + c == 0, 1.0, p)
    return p if p.ndim else float(p)


def stratified_mcnemar(b, c) -> float:
    """McNemar's exact test over strata (e.g. datasets): the discordant counts summed over strata.

    ``b`` and ``c`` hold one count per stratum; see the module docstring for why the
    pooled count is exact whatever the strata's success rates.
    """
    return float(mcnemar_exact(int(np.sum(b)), int(np.sum(c))))


def paired_proportion_difference(both, only_first, only_second, neither, confidence: float = 0.95):
    r"""Difference of paired success rates with Newcombe's (1998) score interval (his method 10).

    With the paired table :math:`a` (both succeed), :math:`b` (only the first), :math:`c`
    (only the second), :math:`d` (neither), :math:`n = a + b + c + d`, the rates
    :math:`p_1 = (a + b)/n`, :math:`p_2 = (a + c)/n` and their Wilson intervals
    :math:`[l_i, u_i]`, the difference :math:`\hat\theta = p_1 - p_2 = (b - c)/n` has the
    interval :math:`[\hat\theta - \delta, \hat\theta + \varepsilon]`,

    .. math::

        \delta = \sqrt{(p_1 - l_1)^2 - 2\hat\phi (p_1 - l_1)(u_2 - p_2) + (u_2 - p_2)^2},\quad
        \varepsilon = \sqrt{(u_1 - p_1)^2 - 2\hat\phi (u_1 - p_1)(p_2 - l_2) + (p_2 - l_2)^2},

    where :math:`\hat\phi = (ad - bc)/\sqrt{(a+b)(c+d)(a+c)(b+d)}` (0 when a margin is empty)
    is the correlation of the pair's outcomes. Returns ``(difference, low, high)`` as arrays
    (NaN where ``n = 0``).
    """
    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (both, only_first, only_second, neither)))
    n = a + b + c + d
    safe_n = np.where(n > 0, n, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = (a + b) / safe_n, (a + c) / safe_n
        l1, u1 = (np.asarray(v) for v in wilson_interval(a + b, safe_n, confidence))
        l2, u2 = (np.asarray(v) for v in wilson_interval(a + c, safe_n, confidence))
        margins = (a + b) * (c + d) * (a + c) * (b + d)
        phi = np.where(margins > 0, (a * d - b * c) / np.sqrt(np.where(margins > 0, margins, 1.0)), 0.0)
        delta = np.sqrt(np.maximum((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
        epsilon = np.sqrt(np.maximum((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    theta = p1 - p2
    out = tuple(np.where(n == 0, np.nan, v) for v in (theta, theta - delta, theta + epsilon))
    return out if theta.ndim else tuple(float(v) for v in out)


def paired_mean_difference(first, second, confidence: float = 0.95) -> dict:
    r"""Paired t-test of equal means and the Student-t interval of the mean difference.

    :math:`\Delta_i = x_i - y_i` over the pairs with both values (NaN pairs dropped);
    :math:`\bar\Delta \pm t_{n-1,(1+c)/2}\, s_\Delta/\sqrt n`, two-sided p of
    :math:`t = \bar\Delta/(s_\Delta/\sqrt n)`. Fewer than two pairs: interval and p are NaN.
    With no spread the difference is exact: p = 0 if it is non-zero, 1 if it is zero, and
    the interval is the point.

    Returns
    -------
    dict
        ``n_pairs``, ``mean``, ``low``, ``high``, ``p_value``.
    """
    x, y = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples need the same shape, got {x.shape} and {y.shape}.")
    return _one_sample(x - y, confidence)


def _one_sample(differences, confidence: float) -> dict:
    d = np.asarray(differences, dtype=float).ravel()
    d = d[~np.isnan(d)]
    n = int(d.size)
    out = {"n_pairs": n, "mean": float(d.mean()) if n else np.nan, "low": np.nan, "high": np.nan, "p_value": np.nan}
    if n < 2:
        return out
    if np.all(d == d[0]):
        return {**out, "low": float(d[0]), "high": float(d[0]), "p_value": 0.0 if d[0] != 0 else 1.0}
    result = stats.ttest_1samp(d, 0.0)
    interval = result.confidence_interval(confidence)
    return {**out, "low": float(interval.low), "high": float(interval.high), "p_value": float(result.pvalue)}


def clustered_mean_difference(first, second, clusters, confidence: float = 0.95) -> dict:
    r"""Paired differences nested in clusters: the one-sample t-test of the cluster means.

    :math:`\bar\Delta_g` = mean of the paired differences of cluster :math:`g`; the test and
    interval are those of :func:`paired_mean_difference` applied to the :math:`G` cluster
    means (:math:`G - 1` degrees of freedom). With one cluster this is the paired t-test
    over its pairs.

    Returns
    -------
    dict
        As :func:`paired_mean_difference`, plus ``n_clusters``; ``n_pairs`` counts pairs.
    """
    x, y = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    groups = np.asarray(clusters)
    if not x.shape == y.shape == groups.shape:
        raise ValueError("first, second and clusters need the same shape.")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y, groups = x[keep], y[keep], groups[keep]
    names = list(dict.fromkeys(groups.tolist()))
    if len(names) <= 1:
        return {**_one_sample(x - y, confidence), "n_clusters": len(names)}
    means = np.array([np.mean((x - y)[groups == name]) for name in names])
    return {**_one_sample(means, confidence), "n_pairs": int(x.size), "n_clusters": len(names)}


def wilcoxon_p_value(first, second) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test of the paired differences (scipy's default method).

    Zero differences are dropped (Wilcoxon's convention); NaN below two non-zero differences,
    1 when every difference is zero.
    """
    d = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    d = d[~np.isnan(d)]
    if d.size and np.all(d == 0):
        return 1.0
    if np.count_nonzero(d) < 2:
        return float("nan")
    return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
