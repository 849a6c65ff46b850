r"""The report's one-glance table: every claim's source, criterion, test, effect and verdict at both scales.

:func:`verdict_records` turns the claims of a run into ``results/tables/verdicts.csv`` (one row
per claim or claim part); :func:`side_by_side` sets this run's verdicts next to those of a run
at the other scale (its ``verdicts.csv``, given by ``report: other_verdicts``), so the default
run's report can show the full-scale verdicts and the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sinkhorn_em_repro.experiments.report.verdicts import CLAIM, Claim

__all__ = ["SCALES", "VERDICT_COLUMNS", "side_by_side", "verdict_records"]

#: The two scales of the side-by-side table (``report: scale_name``).
SCALES = ("default", "full")

#: Columns of results/tables/verdicts.csv.
VERDICT_COLUMNS = ["claim", "title", "source", "criterion", "test", "effect", "comparisons", "verdict", "scale"]


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _comparisons(claim: Claim) -> str:
    """``B better / W worse / n`` from the claim's details table (the counts its grade is computed from)."""
    details = claim.details
    if details is None or "significantly_better" not in getattr(details, "columns", ()):
        return ""
    better, worse = int(details["significantly_better"].sum()), int(details["significantly_worse"].sum())
    return f"{better} better / {worse} worse / {len(details)}"


def verdict_records(claims: Sequence[Claim], scale: str) -> pd.DataFrame:
    """One row per claim (or claim part) of a run at ``scale``: the columns :data:`VERDICT_COLUMNS`.

    ``criterion`` is the criterion's first sentence, ``source`` shortened to its first
    clause; the full texts are under each claim of the report.
    """
    rows = [
        {
            "claim": c.label,
            "title": c.title,
            "source": _short(c.source.split(";")[0], 110),
            "criterion": _short(c.criterion.split(". ")[0], 160),
            "test": c.test or "deterministic check (no sampling test)",
            "effect": c.effect or "see the claim's measured numbers",
            "comparisons": _comparisons(c),
            "verdict": c.verdict,
            "scale": scale,
        }
        for c in claims
        if c.kind == CLAIM
    ]
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def side_by_side(records: pd.DataFrame, scale: str, other: pd.DataFrame | None = None) -> pd.DataFrame:
    """This run's records with a verdict column per scale: ``verdict at default scale``, ``verdict at full scale``.

    ``other`` holds the records of a run at the other scale (matched on ``claim``); a claim
    it lacks, or no other run at all, reads "not run".
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}; fix report: scale_name.")
    other_scale = SCALES[1 - SCALES.index(scale)]
    theirs = {}
    if other is not None and not other.empty:
        theirs = dict(zip(other["claim"].astype(str), other["verdict"]))
    table = records[["claim", "title", "source", "criterion", "test", "effect", "comparisons"]].copy()
    table[f"verdict at {scale} scale"] = records["verdict"].map(lambda v: f"**{v}**")
    table[f"verdict at {other_scale} scale"] = records["claim"].astype(str).map(lambda c: theirs.get(c, "not run"))
    return table[[*table.columns[:7], "verdict at default scale", "verdict at full scale"]]
