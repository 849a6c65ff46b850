r"""Verdicts of the report: the Claim record, the shared rules that turn sub-checks and interval comparisons into a verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "INCONCLUSIVE",
    "NOT_REPRODUCED",
    "PARTIAL",
    "REPRODUCED",
    "SUPERIORITY_RULE",
    "VERDICTS",
    "Claim",
    "combine_verdicts",
    "require_columns",
    "require_flags",
    "superiority_verdict",
]


REPRODUCED = "reproduced"


PARTIAL = "partially reproduced"


NOT_REPRODUCED = "not reproduced"


INCONCLUSIVE = "inconclusive"


VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass
class Claim:
    """One claim of the papers with the evidence that tests it and its computed verdict.

    Attributes
    ----------
    claim_id : int
    title : str
        Short name (one line).
    statement : str
        The claim as the papers make it.
    evidence : list of str
        Tables (paths) the verdict is computed from.
    figures : list of str
        Figures (paths) that show the evidence.
    criterion : str
        The rule that turns the tables into the verdict, in words.
    measured : list of str
        The numbers the verdict rests on, one sentence each.
    verdict : str
        One of :data:`VERDICTS`.
    details : pandas.DataFrame or None
        A table of the per-setting numbers (rendered under the claim).
    """

    claim_id: int
    title: str
    statement: str
    evidence: list[str]
    figures: list[str]
    criterion: str
    measured: list[str]
    verdict: str
    details: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}.")


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
    ``not reproduced`` when one fails outright and the rest are inconclusive.
    """
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if REPRODUCED in verdicts or PARTIAL in verdicts:
        return PARTIAL
    return NOT_REPRODUCED


def _checks_verdict(passed: Sequence[bool]) -> str:
    """All sub-checks pass -> reproduced, none -> not reproduced, some -> partially."""
    passed = list(passed)
    if not passed:
        return INCONCLUSIVE
    if all(passed):
        return REPRODUCED
    return PARTIAL if any(passed) else NOT_REPRODUCED


SUPERIORITY_RULE = (
    "sEM is significantly better in a comparison when its interval lies entirely above the "
    "baseline's, significantly worse when entirely below. Verdict: reproduced if sEM is "
    "significantly better in at least one comparison, significantly worse in none, and not "
    "below the baseline (point estimate) in at least half; partially reproduced if it is "
    "significantly better somewhere but also significantly worse somewhere or below the "
    "baseline in most comparisons; not reproduced if it is significantly worse somewhere and "
    "better nowhere, or if no difference is significant and sEM is below the baseline in most "
    "comparisons; inconclusive if no difference is significant and sEM is not below the "
    "baseline in at least half (or there is nothing to compare)."
)


def superiority_verdict(comparisons: pd.DataFrame) -> str:
    """The shared rule for "sEM is better than the baseline" (see :data:`SUPERIORITY_RULE`).

    Parameters
    ----------
    comparisons : pandas.DataFrame
        One row per comparison with boolean columns ``significantly_better``,
        ``significantly_worse`` and ``not_below`` (sEM's point estimate >= the baseline's).
    """
    n = len(comparisons)
    if n == 0:
        return INCONCLUSIVE
    better = int(comparisons["significantly_better"].sum())
    worse = int(comparisons["significantly_worse"].sum())
    majority_not_below = 2 * int(comparisons["not_below"].sum()) >= n
    if better and not worse and majority_not_below:
        return REPRODUCED
    if better:
        return PARTIAL
    if worse:
        return NOT_REPRODUCED
    return INCONCLUSIVE if majority_not_below else NOT_REPRODUCED


def _compare_intervals(
    sem: pd.DataFrame, base: pd.DataFrame, keys: list[str], value: str, low: str, high: str
) -> pd.DataFrame:
    """Pair sEM and baseline rows on ``keys`` and classify each comparison by interval separation."""
    paired = sem[[*keys, value, low, high]].merge(
        base[[*keys, value, low, high]], on=keys, suffixes=("_sEM", "_base"), how="inner"
    )
    paired["significantly_better"] = paired[f"{low}_sEM"] > paired[f"{high}_base"]
    paired["significantly_worse"] = paired[f"{high}_sEM"] < paired[f"{low}_base"]
    paired["not_below"] = paired[f"{value}_sEM"] >= paired[f"{value}_base"]
    return paired


def _comparison_counts(paired: pd.DataFrame, baseline: str) -> str:
    n = len(paired)
    return (
        f"{n} comparisons of sEM with {baseline}: sEM significantly better in "
        f"{int(paired['significantly_better'].sum())}, significantly worse in "
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
