r"""Verdicts of the report: the Claim record, the shared rules that turn sub-checks and tested comparisons into a verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "CHECK_FAILED",
    "CHECK_PASSED",
    "CHECK_RESULTS",
    "CLAIM",
    "CONTRADICTED",
    "GRADE_DEFINITIONS",
    "IMPLEMENTATION_CHECK",
    "INCONCLUSIVE",
    "NOT_REPRODUCED",
    "OWN_TEST",
    "PARTIAL",
    "REPRODUCED",
    "SUPERIORITY_RULE",
    "VERDICTS",
    "Claim",
    "classify_comparisons",
    "combine_verdicts",
    "fisher_p_value",
    "grade",
    "holm_adjusted",
    "paired_p_value",
    "require_columns",
    "require_flags",
    "superiority_rule",
    "superiority_verdict",
    "welch_p_value",
]


REPRODUCED = "reproduced"


PARTIAL = "partially reproduced"


NOT_REPRODUCED = "not reproduced"


CONTRADICTED = "contradicted"


INCONCLUSIVE = "inconclusive"


VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED, CONTRADICTED, INCONCLUSIVE)

#: The grades of a comparison claim ("sEM is better than the baseline"), each a rule over the
#: counts of the claim's details table: n comparisons, B significantly better (column
#: ``significantly_better``), W significantly worse (``significantly_worse``), after Holm.
#: Written into the report and the README ("Verdict grades").
GRADE_DEFINITIONS = {
    REPRODUCED: "B > n/2 and W = 0: sEM significantly better in more than half of the comparisons, worse in none.",
    PARTIAL: "not reproduced by the rule above, but B >= n/4 and B > W: significant gains in at least a quarter "
    "of the comparisons, outnumbering the significant losses.",
    CONTRADICTED: "W >= n/4 and W > B: sEM significantly worse in at least a quarter of the comparisons, "
    "and in more than it is significantly better (the data point the other way).",
    NOT_REPRODUCED: "any other outcome with n >= 1: gains in fewer than a quarter, or gains and losses level.",
    INCONCLUSIVE: "no comparison could be tested (n = 0, or no p-value: e.g. one trial per method); for claims "
    "1-4, the tables hold no usable evidence.",
}

#: Results of an implementation check (a statement that holds by theorem: a failure is a bug).
CHECK_PASSED = "passed"
CHECK_FAILED = "failed"
CHECK_RESULTS = (CHECK_PASSED, CHECK_FAILED, INCONCLUSIVE)

#: Kinds of report entries: a claim of the papers (or this project's own test of one), judged
#: by a criterion that can fail; or a check of the implementation against a theorem.
CLAIM = "claim"
IMPLEMENTATION_CHECK = "implementation check"

#: Source of a test the papers do not make.
OWN_TEST = "this project's own test"


@dataclass
class Claim:
    """One claim with the evidence that tests it and its computed verdict.

    Attributes
    ----------
    claim_id : int
    title : str
        Short name (one line).
    statement : str
        The claim as the papers make it (or as this project tests it).
    evidence : list of str
        Tables (paths) the verdict is computed from.
    figures : list of str
        Figures (paths) that show the evidence.
    criterion : str
        The rule that turns the tables into the verdict, in words.
    measured : list of str
        The numbers the verdict rests on, one sentence each.
    verdict : str
        One of :data:`VERDICTS` for a claim, of :data:`CHECK_RESULTS` for an
        implementation check.
    details : pandas.DataFrame or None
        A table of the per-setting numbers (rendered under the claim).
    source : str
        Where the claim comes from: paper and the part of it that was read (abstract,
        figure, the authors' code file), or :data:`OWN_TEST`.
    kind : str
        :data:`CLAIM` or :data:`IMPLEMENTATION_CHECK`.
    part : str
        Label of one of several verdicts of the same claim (e.g. claim 5 per pairing of
        weights to starts: ``"a"``, ``"b"``); empty for a claim with one verdict.
    test : str
        The statistical test, in a few words (summary table of the report).
    effect : str
        The claim's effect with its interval, in a few words (summary table of the report).
    """

    @property
    def label(self) -> str:
        """The claim's number with its part, e.g. ``"5a"``."""
        return f"{self.claim_id}{self.part}"

    claim_id: int
    title: str
    statement: str
    evidence: list[str]
    figures: list[str]
    criterion: str
    measured: list[str]
    verdict: str
    details: pd.DataFrame | None = field(default=None, repr=False)
    source: str = ""
    kind: str = CLAIM
    part: str = ""
    test: str = ""
    effect: str = ""

    def __post_init__(self):
        allowed = {CLAIM: VERDICTS, IMPLEMENTATION_CHECK: CHECK_RESULTS}
        if self.kind not in allowed:
            raise ValueError(f"kind must be one of {tuple(allowed)}, got {self.kind!r}.")
        if self.verdict not in allowed[self.kind]:
            raise ValueError(f"verdict must be one of {allowed[self.kind]} for a {self.kind}, got {self.verdict!r}.")


def require_columns(table: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raise ValueError naming ``source`` and the missing columns unless ``table`` has ``columns``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source} lacks columns {missing} (it has {list(table.columns)}); the report reads "
            "these columns: regenerate the table with the current pipeline or update "
            "sinkhorn_em_repro.experiments.report."
        )


def require_flags(table: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raise ValueError naming ``source`` unless each of ``columns`` holds booleans.

    :func:`sinkhorn_em_repro.pipeline.read_table` reads the flag columns declared in
    :mod:`sinkhorn_em_repro.outputs` as booleans; strings such as ``"False"`` would count
    as true and turn a failed check into a pass, so they are refused, not converted.
    """
    wrong = {c: str(table[c].dtype) for c in columns if not pd.api.types.is_bool_dtype(table[c])}
    if wrong:
        raise ValueError(
            f"{source}: columns {sorted(wrong)} must hold booleans, got dtypes {wrong}; read the table with "
            "sinkhorn_em_repro.pipeline.read_table, which applies the types declared in sinkhorn_em_repro.outputs."
        )


def _fmt(value, digits: int = 3) -> str:
    """A number for prose: ``nan`` -> "n/a", infinities spelt out, else ``digits`` significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if math.isinf(value):
        return "never" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict from the verdicts of sub-checks.

    All equal -> that verdict; no sub-check -> ``inconclusive``; otherwise ``partially
    reproduced`` if at least one sub-check is reproduced or partially reproduced, else
    ``contradicted`` if one is contradicted, else ``not reproduced`` (one fails outright and
    the rest are inconclusive).
    """
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if REPRODUCED in verdicts or PARTIAL in verdicts:
        return PARTIAL
    return CONTRADICTED if CONTRADICTED in verdicts else NOT_REPRODUCED


def _checks_verdict(passed: Sequence[bool]) -> str:
    """All sub-checks pass -> reproduced, none -> not reproduced, some -> partially."""
    passed = list(passed)
    if not passed:
        return INCONCLUSIVE
    if all(passed):
        return REPRODUCED
    return PARTIAL if any(passed) else NOT_REPRODUCED


SUPERIORITY_RULE = (
    "Every comparison the configuration declares is counted once, with a two-sided p-value for "
    "sEM against the baseline; Holm's step-down correction at family-wise level {level:g} over "
    "all comparisons of the claim decides which differences are significant (sEM significantly "
    "better: significant with sEM ahead; significantly worse: significant with sEM behind). "
    "With n comparisons, B significantly better and W significantly worse (count them in the "
    "table below): reproduced if B > n/2 and W = 0; otherwise partially reproduced if B >= n/4 "
    "and B > W; contradicted if W >= n/4 and W > B; not reproduced in every other case "
    "(inconclusive only when no comparison can be tested)."
)


def superiority_rule(level: float = 0.05) -> str:
    """:data:`SUPERIORITY_RULE` at family-wise level ``level``."""
    return SUPERIORITY_RULE.format(level=level)


def holm_adjusted(p_values) -> np.ndarray:
    r"""Holm's step-down adjusted p-values (NaN counts as 1, i.e. as a comparison that cannot be significant).

    With :math:`p_{(1)} \le \dots \le p_{(m)}`,
    :math:`\tilde p_{(i)} = \max_{j \le i} \min\{1, (m - j + 1)\, p_{(j)}\}`; rejecting
    :math:`\tilde p \le` level controls the family-wise error rate at that level.
    """
    p = np.asarray(p_values, dtype=float)
    p = np.where(np.isnan(p), 1.0, p)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def classify_comparisons(comparisons: pd.DataFrame, level: float = 0.05) -> pd.DataFrame:
    """Holm-correct the p-values of a claim's comparisons and classify each one.

    Parameters
    ----------
    comparisons : pandas.DataFrame
        One row per comparison with ``difference`` (sEM minus the baseline, point
        estimates; positive = sEM ahead) and ``p_value`` (two-sided; NaN when the
        comparison cannot be tested).
    level : float
        Family-wise error rate of the whole table.

    Returns
    -------
    pandas.DataFrame
        A copy with ``p_holm``, ``significantly_better``, ``significantly_worse`` and
        ``not_below`` (``difference >= 0``).
    """
    if not 0 < level < 1:
        raise ValueError(f"the significance level must lie in (0, 1), got {level}; fix report: significance_level.")
    out = comparisons.copy()
    out["p_holm"] = holm_adjusted(out["p_value"].to_numpy(dtype=float))
    significant = out["p_holm"] <= level
    out["significantly_better"] = significant & (out["difference"] > 0)
    out["significantly_worse"] = significant & (out["difference"] < 0)
    out["not_below"] = out["difference"] >= 0
    return out


def superiority_verdict(comparisons: pd.DataFrame) -> str:
    """The shared rule for "sEM is better than the baseline" (see :data:`SUPERIORITY_RULE`).

    Parameters
    ----------
    comparisons : pandas.DataFrame
        Output of :func:`classify_comparisons`: one row per pre-declared comparison with
        boolean columns ``significantly_better``, ``significantly_worse`` and ``not_below``.
    """
    n = len(comparisons)
    if n == 0:
        return INCONCLUSIVE
    if "p_value" in comparisons.columns and comparisons["p_value"].isna().all():
        return INCONCLUSIVE
    better = int(comparisons["significantly_better"].sum())
    worse = int(comparisons["significantly_worse"].sum())
    return grade(n, better, worse)


def grade(n: int, better: int, worse: int) -> str:
    """The grade of :data:`GRADE_DEFINITIONS` for ``n`` comparisons, ``better`` (B) and ``worse`` (W) significant."""
    if n == 0:
        return INCONCLUSIVE
    if 2 * better > n and not worse:
        return REPRODUCED
    if 4 * better >= n and better > worse:
        return PARTIAL
    if 4 * worse >= n and worse > better:
        return CONTRADICTED
    return NOT_REPRODUCED


def welch_p_value(mean_a, sd_a, n_a, mean_b, sd_b, n_b) -> np.ndarray:
    r"""Two-sided p-value of Welch's t-test of equal means, from means, standard deviations and sizes.

    :math:`t = (\bar a - \bar b) / \sqrt{s_a^2/n_a + s_b^2/n_b}` with the
    Welch-Satterthwaite degrees of freedom. NaN when either side has fewer than two
    replicates; with no spread on either side the difference is exact (p = 0 if the means
    differ, 1 if they are equal).
    """
    mean_a, sd_a, n_a, mean_b, sd_b, n_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (mean_a, sd_a, n_a, mean_b, sd_b, n_b))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        va, vb = sd_a**2 / n_a, sd_b**2 / n_b
        se = np.sqrt(va + vb)
        t = (mean_a - mean_b) / se
        dof = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
        p = 2.0 * stats.t.sf(np.abs(t), dof)
    p = np.where(se == 0, np.where(mean_a == mean_b, 1.0, 0.0), p)
    return np.where((n_a < 2) | (n_b < 2), np.nan, p)


def paired_p_value(differences) -> float:
    """Two-sided p-value of the one-sample t-test of mean zero (paired differences; NaN below two pairs).

    With no spread the mean difference is exact: p = 0 if it is non-zero, 1 if it is zero.
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size < 2:
        return float("nan")
    if np.all(d == d[0]):
        return 0.0 if d[0] != 0 else 1.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def fisher_p_value(successes_a, n_a, successes_b, n_b) -> np.ndarray:
    """Two-sided p-value of Fisher's exact test of equal success probabilities, elementwise."""
    values = np.broadcast_arrays(*(np.asarray(v, dtype=int) for v in (successes_a, n_a, successes_b, n_b)))
    out = np.empty(values[0].shape, dtype=float)
    for index, (sa, na, sb, nb) in enumerate(zip(*(v.ravel() for v in values))):
        out.flat[index] = stats.fisher_exact([[sa, na - sa], [sb, nb - sb]]).pvalue if min(na, nb) > 0 else np.nan
    return out


def _comparison_counts(paired: pd.DataFrame, baseline: str, level: float = 0.05) -> str:
    n = len(paired)
    return (
        f"{n} comparisons of sEM with {baseline} (Holm, family-wise level {level:g}): sEM significantly "
        f"better in {int(paired['significantly_better'].sum())}, significantly worse in "
        f"{int(paired['significantly_worse'].sum())}, point estimate not below {baseline} in "
        f"{int(paired['not_below'].sum())}."
    )


def _nearest(values: np.ndarray, target: float, atol: float = 1e-6):
    """The element of ``values`` within ``atol`` of ``target``, or None."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return None
    index = int(np.argmin(np.abs(values - target)))
    return values[index] if abs(values[index] - target) <= atol else None
