r"""The report's verdict for the spatial-domain application, from the per-seed DLPFC table.

Claim (this project's own test: the papers do not benchmark DLPFC): with the layer
proportions a user could know - those of an adjacent slice of the same donor - Sinkhorn-EM
finds the cortical layers better (higher ARI against the manual annotation) than EM with
the same fixed weights (vEM) and than EM re-estimating them (oEM).

Criterion. For each (slice, features, covariance type) with the claim's weights and each
baseline :math:`b`, the seeds are paired (every method of a seed starts from the same
parameters), :math:`\Delta_j = \mathrm{ARI}_j(\mathrm{sEM}) - \mathrm{ARI}_j(b)`, and the
paired t-test of :math:`\bar\Delta = 0` gives a two-sided p-value (fewer than two paired
seeds: untestable). Every comparison of every baseline forms one family, corrected by Holm's
method (:func:`sinkhorn_em_repro.experiments.report.verdicts.classify_comparisons`); per
baseline the report's shared superiority rule decides (reproduced: significantly better in a
majority of the comparisons and significantly worse in none;
:func:`~sinkhorn_em_repro.experiments.report.verdicts.superiority_verdict`). The claim is
reproduced if it is reproduced against every baseline, not reproduced if not reproduced against
every baseline, partially reproduced when any baseline gives (partially) reproduced, and not
reproduced otherwise (:func:`~sinkhorn_em_repro.experiments.report.verdicts.combine_verdicts`).
The Student-t interval of :math:`\bar\Delta` is shown beside the p-values.

Published context, shown and never used as a pass rule (Yuan et al. Nat Methods 2024; Hu et
al. 2024): non-spatial Gaussian mixtures on principal components (mclust) score about 0.2-0.35
ARI on DLPFC; spatial methods 0.4-0.6 (BayesSpace, SpaGCN about 0.4-0.55; GraphST, STAGATE about
0.5-0.6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.report.verdicts import (
    INCONCLUSIVE,
    classify_comparisons,
    combine_verdicts,
    paired_p_value,
    superiority_rule,
    superiority_verdict,
)
from sinkhorn_em_repro.intervals import t_interval

__all__ = ["PUBLISHED_CONTEXT", "SpatialClaim", "claim_spatial_domains", "paired_differences"]

#: Published DLPFC ARI ranges (7 domains): context only.
PUBLISHED_CONTEXT = (
    "Published context for DLPFC, not a pass rule (Yuan et al. Nat Methods 2024; Hu et al. 2024): "
    "non-spatial Gaussian mixtures on principal components (mclust) score about 0.2-0.35 ARI; spatial "
    "methods 0.4-0.6 (BayesSpace, SpaGCN about 0.4-0.55; GraphST, STAGATE about 0.5-0.6)."
)
_KEYS = ["slice", "features", "covariance_type"]


@dataclass
class SpatialClaim:
    """The claim with its evidence, criterion, measured numbers and computed verdict.

    Fields mirror the report's ``Claim`` (without its number), so the report wraps it as is.
    """

    title: str
    statement: str
    evidence: list[str]
    figures: list[str]
    criterion: str
    measured: list[str]
    verdict: str
    details: pd.DataFrame | None = field(default=None, repr=False)


def paired_differences(
    per_seed: pd.DataFrame, *, weights: str, baseline: str, confidence: float = 0.95
) -> pd.DataFrame:
    """Per (slice, features, covariance type): the paired ARI difference sEM - ``baseline``.

    Returns
    -------
    DataFrame with columns slice, features, covariance_type, baseline, n_pairs, ari_sEM,
    ari_baseline (means over the paired seeds), diff_mean, diff_low, diff_high (Student-t
    interval), difference (= diff_mean) and p_value (paired t-test, NaN below two pairs).
    """
    rows = per_seed[per_seed["weights"].astype(str) == weights].assign(slice=lambda t: t["slice"].astype(str))
    sem = rows[rows["method"] == "sEM"][[*_KEYS, "seed_index", "ari"]]
    base = rows[rows["method"] == baseline][[*_KEYS, "seed_index", "ari"]]
    paired = sem.merge(base, on=[*_KEYS, "seed_index"], suffixes=("_sEM", "_baseline")).dropna()
    out = []
    for key, group in paired.groupby(_KEYS, sort=False):
        diff = group["ari_sEM"] - group["ari_baseline"]
        n = len(diff)
        mean, sd = float(diff.mean()), float(diff.std(ddof=1)) if n > 1 else np.nan
        low, high = t_interval(mean, sd, n, confidence) if n > 1 else (-np.inf, np.inf)
        out.append(
            {
                **dict(zip(_KEYS, key)),
                "baseline": baseline,
                "n_pairs": n,
                "ari_sEM": float(group["ari_sEM"].mean()),
                "ari_baseline": float(group["ari_baseline"].mean()),
                "diff_mean": mean,
                "diff_low": float(low),
                "diff_high": float(high),
                "difference": mean,
                "p_value": paired_p_value(diff),
            }
        )
    columns = [*_KEYS, "baseline", "n_pairs", "ari_sEM", "ari_baseline", "diff_mean", "diff_low", "diff_high"]
    return pd.DataFrame(out, columns=[*columns, "difference", "p_value"])


def claim_spatial_domains(
    per_seed: pd.DataFrame,
    *,
    weights: str = "adjacent",
    baselines: Sequence[str] = ("vEM", "oEM"),
    confidence: float = 0.95,
    level: float = 0.05,
    source: str = "results/tables/dlpfc.csv",
    figures: Sequence[str] = ("results/figures/dlpfc_ari.pdf", "results/figures/dlpfc_map.pdf"),
) -> SpatialClaim:
    """The verdict of the module docstring's criterion on ``per_seed`` (``dlpfc.csv``).

    Raises
    ------
    ValueError
        If ``per_seed`` lacks a needed column.
    """
    needed = [*_KEYS, "weights", "method", "seed_index", "ari"]
    missing = [column for column in needed if column not in per_seed.columns]
    if missing:
        raise ValueError(f"{source} lacks columns {missing}; regenerate it with the current pipeline")
    found = [paired_differences(per_seed, weights=weights, baseline=b, confidence=confidence) for b in baselines]
    family = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    details = classify_comparisons(family, level) if not family.empty else family
    verdicts, measured = [], []
    for baseline in baselines:
        paired = details[details["baseline"] == baseline] if not details.empty else details
        if paired.empty:
            measured.append(f"No slice has both sEM and {baseline} with weights = {weights}.")
            continue
        verdicts.append(superiority_verdict(paired))
        measured.append(
            f"sEM vs {baseline} (weights {weights}): {len(paired)} comparisons (Holm over all {len(details)} "
            f"of the claim, family-wise level {level:g}), sEM significantly better in "
            f"{int(paired['significantly_better'].sum())}, significantly worse in "
            f"{int(paired['significantly_worse'].sum())}, mean ARI difference >= 0 in "
            f"{int(paired['not_below'].sum())}; mean difference {paired['diff_mean'].mean():+.3f}. "
            f"Sub-verdict: {verdicts[-1]}."
        )
    rows = per_seed[per_seed["weights"].astype(str) == weights]
    for (features, covariance), group in rows.groupby(["features", "covariance_type"], sort=False):
        means = group.groupby("method", sort=False)["ari"].mean()
        measured.append(
            f"{features}, {covariance} covariance, weights {weights}, mean ARI over slices and seeds: "
            + ", ".join(f"{method} {value:.3f}" for method, value in means.items())
            + "."
        )
    measured.append(PUBLISHED_CONTEXT)
    return SpatialClaim(
        title="Spatial domains (DLPFC): better layers with an adjacent slice's proportions",
        statement=(
            "With the layer proportions of an adjacent slice of the same donor as known weights, Sinkhorn-EM "
            "recovers the manual cortical layers of DLPFC Visium slices better (higher ARI) than EM with the "
            f"same weights and than EM re-estimating them ({', '.join(baselines)}). Source: this project's own "
            "test; the papers do not benchmark DLPFC."
        ),
        evidence=[source],
        figures=list(figures),
        criterion=(
            f"Per (slice, features, covariance type) with weights = {weights} and per baseline: paired t-test "
            "over seeds of ARI(sEM) - ARI(baseline), same start per seed; the comparisons of all baselines form "
            f"one family. {superiority_rule(level)} Applied per baseline; reproduced only if reproduced against "
            f"every baseline ({', '.join(baselines)}). The published ARI ranges are context, not a pass rule."
        ),
        measured=measured,
        verdict=combine_verdicts(verdicts) if verdicts else INCONCLUSIVE,
        details=details if not details.empty else None,
    )
