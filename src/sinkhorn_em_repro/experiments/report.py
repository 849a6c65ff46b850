r"""The reproduction report: each claim of the papers, its measured numbers and a computed verdict.

Every verdict is a function of the result tables and of the thresholds of the ``report``
config section, never written by hand. A claim function takes the tables it needs and
returns a :class:`Claim` (statement, evidence, criterion text, measured numbers, verdict);
:func:`render_report` turns the claims, the software versions, the config hash and the
cost of every rule into ``results/REPORT.md``.

Verdicts are one of :data:`VERDICTS`:

``reproduced``
    every sub-check of the criterion holds;
``partially reproduced``
    some sub-checks hold and others fail, or the evidence is mixed;
``not reproduced``
    the criterion fails: the data do not support the claim (the numbers are shown);
``inconclusive``
    the tables hold no usable evidence, or the differences are within the uncertainty
    while pointing the claimed way.

Comparisons "Sinkhorn-EM is better than a baseline" (claims 5-7) share one rule,
:func:`superiority_verdict`, on interval comparisons: sEM is *significantly better* in a
comparison when the lower end of its interval lies above the upper end of the baseline's,
*significantly worse* in the opposite case (non-overlapping intervals: a conservative
test).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sinkhorn_em_repro.intervals import t_interval

__all__ = [
    "VERDICTS",
    "Claim",
    "build_claims",
    "claim_celegans",
    "claim_convergence_rates",
    "claim_dlpfc",
    "claim_fewer_spurious_minima",
    "claim_fig2",
    "claim_identities",
    "claim_osmfish",
    "claim_restarts",
    "claim_shared_optimum",
    "combine_verdicts",
    "config_hash",
    "figure_rows",
    "markdown_table",
    "render_report",
    "report_from_files",
    "require_columns",
    "restarts_needed",
    "result_config",
    "rule_costs",
    "software_versions",
    "superiority_verdict",
]

REPRODUCED = "reproduced"
PARTIAL = "partially reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED, INCONCLUSIVE)

TABLES = "results/tables"
FIGURES = "results/figures"

#: Claims each figure supports (by file stem); figures not listed support no claim directly.
FIGURE_CLAIMS = {
    "landscape": (1, 2),
    "landscape_2d": (1, 2),
    "fig2": (3,),
    "convergence_rates": (4,),
    "init_success": (5,),
    "epsilon": (),
    "celegans_metrics": (6,),
    "celegans_segmentation": (6,),
    "osmfish_ari": (7,),
    "osmfish_map": (7,),
    "dlpfc_ari": (9,),
    "dlpfc_map": (9,),
    "mob_ari": (),
    "mob_map": (),
}
FIGURE_CONTENT = {
    "landscape": "NLL and EOT loss of the symmetric model, one panel per alpha*",
    "landscape_2d": "NLL and EOT loss over two free means, stationary points marked",
    "fig2": "Figure 2 of Mena et al. (2020): errors, final theta, iterations (vEM, oEM, sEM)",
    "convergence_rates": "error against iteration, linear rates (symmetric model and K = 3)",
    "init_success": "success fraction over random initialisations vs separation",
    "epsilon": "constant epsilon and annealing: success, bias, iterations",
    "celegans_metrics": "neuron identification metrics vs iteration and time",
    "celegans_segmentation": "voxels coloured by true neuron and by each method's assignment",
    "osmfish_ari": "ARI per seed, method and weight setting (osmFISH)",
    "osmfish_map": "osmFISH cells coloured by region and by each method's clustering",
    "dlpfc_ari": "ARI per seed, method, weights, features and covariance (DLPFC Visium slices)",
    "dlpfc_map": "DLPFC spots coloured by manual layer and by each method's best-likelihood fit",
    "mob_ari": "ARI per seed, method and weights (mouse olfactory bulb)",
    "mob_map": "olfactory bulb spots coloured by layer and by each method's best-likelihood fit",
}


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


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def require_columns(table: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raise ValueError naming ``source`` and the missing columns unless ``table`` has ``columns``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source} lacks columns {missing} (it has {list(table.columns)}); the report reads "
            "these columns: regenerate the table with the current pipeline or update "
            "sinkhorn_em_repro.experiments.report."
        )


def _as_bool(series: pd.Series) -> pd.Series:
    """Booleans from a CSV column read as bool, 0/1 or the strings True/False."""
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "1.0"])


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


# --------------------------------------------------------------------------------------
# Claims 1 and 2: landscapes
# --------------------------------------------------------------------------------------
def claim_shared_optimum(
    minima: pd.DataFrame,
    stationary_2d: pd.DataFrame | None = None,
    *,
    minimizer_tolerance: float = 0.05,
    gap_tolerance: float = 1e-9,
) -> Claim:
    r"""Claim 1: the EOT loss and the NLL share the global optimum, and :math:`L_{EOT} \ge NLL`.

    Criterion, per :math:`\alpha^*` of the 1-D landscape (``landscape_minima.csv``): the two
    refined global minimisers are within ``minimizer_tolerance`` (component standard
    deviations) and the smallest gap ``min_theta (L_EOT - NLL)`` over the grid is
    ``>= -gap_tolerance`` (rounding). With the 2-D table, its global minima (the
    non-spurious minima) of the two losses must also be within ``minimizer_tolerance``.
    Reproduced if every check passes, not reproduced if none does, partially otherwise.
    """
    source = f"{TABLES}/landscape_minima.csv"
    require_columns(minima, ["alpha", "loss", "global_minimizer", "min_gap_eot_minus_nll"], source)
    rows, checks = [], []
    for alpha, group in minima.groupby("alpha", sort=True):
        by_loss = group.set_index("loss")
        if not {"nll", "eot"} <= set(by_loss.index):
            continue
        distance = abs(float(by_loss.loc["eot", "global_minimizer"]) - float(by_loss.loc["nll", "global_minimizer"]))
        gap = float(group["min_gap_eot_minus_nll"].min())
        agree, ordered = bool(distance <= minimizer_tolerance), bool(gap >= -gap_tolerance)
        checks += [agree, ordered]
        rows.append(
            {
                "alpha": alpha,
                "nll_global_minimizer": float(by_loss.loc["nll", "global_minimizer"]),
                "eot_global_minimizer": float(by_loss.loc["eot", "global_minimizer"]),
                "distance": distance,
                "min_gap_eot_minus_nll": gap,
                "minimizers_agree": agree,
                "eot_above_nll": ordered,
            }
        )
    details = pd.DataFrame(rows)
    measured = []
    if not details.empty:
        measured.append(
            f"1-D symmetric model, {len(details)} values of alpha*: largest distance between the two "
            f"global minimisers {_fmt(details['distance'].max())} (tolerance {_fmt(minimizer_tolerance)}); "
            f"agree at {int(details['minimizers_agree'].sum())}/{len(details)}."
        )
        measured.append(
            f"Smallest L_EOT - NLL over all grids: {_fmt(details['min_gap_eot_minus_nll'].min())} "
            f"(must be >= -{_fmt(gap_tolerance)}); holds at {int(details['eot_above_nll'].sum())}/{len(details)}."
        )
    evidence = [source]
    if stationary_2d is not None and not stationary_2d.empty:
        source_2d = f"{TABLES}/landscape_2d_stationary.csv"
        require_columns(stationary_2d, ["alpha", "loss", "theta1", "theta2", "kind", "spurious"], source_2d)
        evidence.append(source_2d)
        table = stationary_2d.assign(spurious=_as_bool(stationary_2d["spurious"]))
        for alpha, group in table.groupby("alpha", sort=True):
            best = group[(group["kind"] == "minimum") & ~group["spurious"]]
            points = {loss: best.loc[best["loss"] == loss, ["theta1", "theta2"]].to_numpy() for loss in ("nll", "eot")}
            if any(len(p) == 0 for p in points.values()):
                checks.append(False)
                measured.append(f"2-D landscape, alpha* = {_fmt(alpha)}: a loss has no global minimum in the table.")
                continue
            # Ties (label swap) give several global minima: compare the closest pair.
            distance = float(min(np.linalg.norm(a - b) for a in points["nll"] for b in points["eot"]))
            checks.append(distance <= minimizer_tolerance)
            measured.append(
                f"2-D landscape (free means), alpha* = {_fmt(alpha)}: global minima of NLL and EOT loss "
                f"{_fmt(distance)} apart (tolerance {_fmt(minimizer_tolerance)})."
            )
    verdict = _checks_verdict(checks)
    return Claim(
        1,
        "Shared global optimum, L_EOT >= NLL",
        "The EOT loss and the negative log-likelihood have the same global minimiser, and the EOT "
        "loss is never below the NLL (Mena et al. 2020; the NLL is the semi-relaxed EOT value).",
        evidence,
        [f"{FIGURES}/landscape.pdf", f"{FIGURES}/landscape_2d.pdf"],
        f"For every alpha*: |argmin L_EOT - argmin NLL| <= {_fmt(minimizer_tolerance)} (component standard "
        f"deviations; refined minimisers of the 1-D model, and global minima of the 2-D landscape) and "
        f"min over the grid of L_EOT - NLL >= -{_fmt(gap_tolerance)}. Reproduced if all checks hold, "
        "not reproduced if none does, partially otherwise.",
        measured or ["No landscape rows with both losses."],
        verdict,
        details,
    )


def _spurious_counts_1d(minima: pd.DataFrame) -> pd.DataFrame:
    counts = minima.pivot_table(index="alpha", columns="loss", values="n_local_minima", aggfunc="first")
    return counts.reindex(columns=["nll", "eot"])


def claim_fewer_spurious_minima(minima: pd.DataFrame, stationary_2d: pd.DataFrame | None = None) -> Claim:
    r"""Claim 2: the EOT landscape has fewer spurious local minima than the NLL.

    Criterion, one sub-check per landscape: (1-D symmetric model) at every
    :math:`\alpha^*` the EOT loss has no more local minima than the NLL, and strictly fewer
    at one :math:`\alpha^*` at least (both losses have the same number of global minima:
    two tied ones at :math:`\alpha^* = 1/2`, one otherwise, so the difference is in spurious
    minima); (2-D free means) the same comparison of the spurious minima
    (``kind == minimum`` and ``spurious``) per :math:`\alpha^*`. Reproduced if both
    sub-checks pass, partially if one does, not reproduced if none does.
    """
    source = f"{TABLES}/landscape_minima.csv"
    require_columns(minima, ["alpha", "loss", "n_local_minima"], source)
    counts = _spurious_counts_1d(minima).dropna()
    checks, measured, evidence = [], [], [source]
    details = counts.reset_index().rename(columns={"nll": "nll_local_minima", "eot": "eot_local_minima"})
    if not counts.empty:
        never_more = bool((counts["eot"] <= counts["nll"]).all())
        fewer_somewhere = bool((counts["eot"] < counts["nll"]).any())
        checks.append(never_more and fewer_somewhere)
        alphas = counts.index.to_numpy(dtype=float)
        # Alpha* = 1/2 has two tied global minima by symmetry, not a spurious one.
        asymmetric = alphas > 0.5 + 1e-9
        for loss in ("nll", "eot"):
            spurious = alphas[asymmetric & (counts[loss].to_numpy() > 1)]
            measured.append(
                f"1-D symmetric model, {'NLL' if loss == 'nll' else 'EOT loss'}: a spurious minimum at "
                f"{len(spurious)} of {int(asymmetric.sum())} alpha* > 1/2"
                + (f" (largest such alpha* = {_fmt(spurious.max())})." if len(spurious) else ".")
            )
        measured.append(
            f"1-D: EOT loss never has more minima than the NLL: {_fmt(never_more)}; strictly fewer at "
            f"{int((counts['eot'] < counts['nll']).sum())} alpha*."
        )
    if stationary_2d is not None and not stationary_2d.empty:
        source_2d = f"{TABLES}/landscape_2d_stationary.csv"
        require_columns(stationary_2d, ["alpha", "loss", "kind", "spurious"], source_2d)
        evidence.append(source_2d)
        table = stationary_2d.assign(spurious=_as_bool(stationary_2d["spurious"]))
        spurious = table[(table["kind"] == "minimum") & table["spurious"]]
        per_alpha = (
            spurious.groupby(["alpha", "loss"])
            .size()
            .unstack("loss")
            .reindex(index=sorted(table["alpha"].unique()), columns=["nll", "eot"])
            .fillna(0)
            .astype(int)
        )
        never_more = bool((per_alpha["eot"] <= per_alpha["nll"]).all())
        fewer_somewhere = bool((per_alpha["eot"] < per_alpha["nll"]).any())
        checks.append(never_more and fewer_somewhere)
        for alpha, row in per_alpha.iterrows():
            measured.append(
                f"2-D landscape (free means), alpha* = {_fmt(alpha)}: spurious local minima NLL "
                f"{int(row['nll'])}, EOT loss {int(row['eot'])}."
            )
    verdict = _checks_verdict(checks)
    return Claim(
        2,
        "Fewer spurious local minima",
        "The EOT loss has fewer spurious local minima than the NLL (Mena et al. 2020).",
        evidence,
        [f"{FIGURES}/landscape.pdf", f"{FIGURES}/landscape_2d.pdf"],
        "Per landscape (1-D symmetric model; 2-D free means): at every alpha* the EOT loss has no more "
        "(spurious) local minima than the NLL and strictly fewer at one alpha* at least. Reproduced if "
        "both landscapes pass, partially if one does, not reproduced if none does.",
        measured or ["No landscape rows."],
        verdict,
        details,
    )


# --------------------------------------------------------------------------------------
# Claim 3: Figure 2
# --------------------------------------------------------------------------------------
def _sign_threshold(runs: pd.DataFrame) -> float:
    """Smallest alpha* > 1/2 from which every larger grid alpha* recovers theta > 0 in every rep."""
    recovered = runs.groupby("alpha")["theta_final"].apply(lambda t: bool((t > 0).all())).sort_index()
    recovered = recovered[recovered.index > 0.5 + 1e-9]
    if recovered.empty or not recovered.iloc[-1]:
        return math.inf
    # Walk down from the largest alpha* while the sign is still recovered.
    flags = recovered.to_numpy()[::-1]
    alphas = recovered.index.to_numpy()[::-1]
    last_ok = alphas[0]
    for ok, alpha in zip(flags, alphas):
        if not ok:
            break
        last_ok = alpha
    return float(last_ok)


def claim_fig2(runs: pd.DataFrame, *, theta0: float = -2.0, panel_alphas: Sequence[float] = (0.78, 0.9)) -> Claim:
    r"""Claim 3: Figure 2 - sEM recovers the sign from bad starts at smaller :math:`\alpha^*` and faster.

    Sub-checks on ``fig2_runs.csv``:

    * **sign**: from ``theta0`` (-2 in the paper), the *sign threshold* of a method is the
      smallest grid :math:`\alpha^* > 1/2` from which every larger :math:`\alpha^*` ends
      with :math:`\theta > 0` in every repetition (:math:`+\infty` if it never does). Passes
      if the threshold of sEM is below that of vEM.
    * **iterations**, one per panel :math:`\alpha^*` (0.78 and 0.9): the mean of
      ``iters_to_converge`` over bad starts (:math:`\theta_0 < 0`) and repetitions is
      smaller for sEM than for vEM.

    Reproduced if every sub-check passes, not reproduced if none does, partially otherwise.
    """
    source = f"{TABLES}/fig2_runs.csv"
    require_columns(runs, ["method", "alpha", "theta0", "rep", "theta_final", "iters_to_converge"], source)
    checks, measured, rows = [], [], []
    available = set(runs["method"])
    if {"sEM", "vEM"} <= available:
        start = _nearest(runs["theta0"].unique(), theta0)
        if start is None:
            measured.append(f"No runs from theta0 = {_fmt(theta0)}: the sign sub-check is skipped.")
        else:
            from_start = runs[np.isclose(runs["theta0"], start)]
            thresholds = {m: _sign_threshold(from_start[from_start["method"] == m]) for m in ("vEM", "sEM")}
            checks.append(thresholds["sEM"] < thresholds["vEM"])
            measured.append(
                f"From theta0 = {_fmt(start)}, the right sign (theta > 0 in every repetition) is recovered for "
                f"alpha* >= {_fmt(thresholds['sEM'])} by sEM and alpha* >= {_fmt(thresholds['vEM'])} by vEM."
            )
            rows.append(
                {
                    "check": f"sign threshold from theta0 = {_fmt(start)}",
                    "sEM": thresholds["sEM"],
                    "vEM": thresholds["vEM"],
                    "passed": checks[-1],
                }
            )
        for target in panel_alphas:
            alpha = _nearest(runs["alpha"].unique(), target)
            if alpha is None:
                measured.append(f"alpha* = {_fmt(target)} is not on the grid: that iterations sub-check is skipped.")
                continue
            bad = runs[np.isclose(runs["alpha"], alpha) & (runs["theta0"] < 0)]
            means = bad.groupby("method")["iters_to_converge"].mean()
            if not {"sEM", "vEM"} <= set(means.index):
                continue
            checks.append(bool(means["sEM"] < means["vEM"]))
            measured.append(
                f"alpha* = {_fmt(alpha)}, bad starts (theta0 < 0): mean iterations to 1.5 x final error "
                f"sEM {_fmt(means['sEM'])}, vEM {_fmt(means['vEM'])}"
                + (f", oEM {_fmt(means['oEM'])}." if "oEM" in means.index else ".")
            )
            rows.append(
                {
                    "check": f"mean iterations, alpha* = {_fmt(alpha)}, theta0 < 0",
                    "sEM": float(means["sEM"]),
                    "vEM": float(means["vEM"]),
                    "passed": checks[-1],
                }
            )
    else:
        measured.append(f"fig2_runs.csv holds methods {sorted(available)}; sEM and vEM are both needed.")
    return Claim(
        3,
        "Figure 2: right sign at smaller alpha*, fewer iterations",
        "In the symmetric 1-D mixture, Sinkhorn-EM started at theta0 = -2 recovers the right sign of theta "
        "at smaller alpha* than EM, and needs fewer iterations than EM from bad starts at alpha* = 0.78 "
        "and 0.9 (Mena et al. 2020, Figure 2).",
        [source],
        [f"{FIGURES}/fig2.pdf"],
        f"(a) Sign threshold (smallest alpha* > 1/2 from which every larger grid alpha* ends with theta > 0 "
        f"in every repetition, from theta0 = {_fmt(theta0)}): sEM's below vEM's. (b) For each alpha* in "
        f"{[float(a) for a in panel_alphas]}: mean iters_to_converge over theta0 < 0 and repetitions smaller "
        "for sEM than for vEM. Reproduced if all sub-checks hold, not reproduced if none does, partially "
        "otherwise.",
        measured,
        _checks_verdict(checks),
        pd.DataFrame(rows),
    )


# --------------------------------------------------------------------------------------
# Claim 4: convergence rates
# --------------------------------------------------------------------------------------
def _rate_ratios(rates: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    linear = rates[rates["iterations_to_1e-6"].notna()] if "iterations_to_1e-6" in rates else rates
    pivot = linear.pivot_table(index=keys, columns="method", values="rate", aggfunc="first")
    if not {"sEM", "vEM"} <= set(pivot.columns):
        return pd.DataFrame(columns=[*keys, "rate_vEM", "rate_sEM", "ratio"])
    out = pivot[["vEM", "sEM"]].dropna().rename(columns={"vEM": "rate_vEM", "sEM": "rate_sEM"})
    out["ratio"] = out["rate_sEM"] / out["rate_vEM"]
    return out.reset_index()


def claim_convergence_rates(
    rates: pd.DataFrame, general_k_rates: pd.DataFrame | None = None, *, band: Sequence[float] = (0.5, 2.0)
) -> Claim:
    r"""Claim 4: Sinkhorn-EM converges at a linear rate comparable to EM.

    The rate of a run is its error ratio per iteration (smaller = faster); the ratio of a
    setting is rate(sEM) / rate(vEM), over the settings where both runs converge linearly
    (``iterations_to_1e-6`` defined). Criterion: with ``band = (low, high)``, reproduced
    if the median ratio and every ratio is at most ``high`` (sEM never markedly slower;
    faster counts as comparable or better); partially reproduced if the median is at most
    ``high`` but some settings exceed it; not reproduced if the median exceeds ``high``;
    inconclusive without a comparable setting. The symmetric population settings and the
    general-K runs are pooled.
    """
    low, high = float(band[0]), float(band[1])
    if not 0 < low <= 1 <= high:
        raise ValueError(
            f"rate_ratio_band must satisfy 0 < low <= 1 <= high, got {list(band)}; fix report: rate_ratio_band."
        )
    source = f"{TABLES}/convergence_rates.csv"
    require_columns(rates, ["method", "theta_star", "alpha", "theta0", "rate"], source)
    ratios = _rate_ratios(rates, ["theta_star", "alpha", "theta0"]).assign(experiment="symmetric")
    evidence = [source]
    if general_k_rates is not None and not general_k_rates.empty:
        source_k = f"{TABLES}/convergence_general_k_rates.csv"
        require_columns(general_k_rates, ["method", "dataset", "rate"], source_k)
        evidence.append(source_k)
        ratios = pd.concat(
            [ratios, _rate_ratios(general_k_rates, ["dataset"]).assign(experiment="general K")], ignore_index=True
        )
    measured = []
    n_settings = rates.drop_duplicates(["theta_star", "alpha", "theta0"]).shape[0]
    if ratios.empty:
        verdict = INCONCLUSIVE
        measured.append("No setting where both sEM and vEM converge linearly.")
    else:
        median = float(ratios["ratio"].median())
        above = int((ratios["ratio"] > high).sum())
        below = int((ratios["ratio"] < low).sum())
        if median > high:
            verdict = NOT_REPRODUCED
        elif above:
            verdict = PARTIAL
        else:
            verdict = REPRODUCED
        measured.append(
            f"{len(ratios)} comparable settings ({n_settings} symmetric settings in the table; the others "
            f"lack a linear rate for sEM or vEM): median rate ratio sEM/vEM {_fmt(median)}, range "
            f"[{_fmt(ratios['ratio'].min())}, {_fmt(ratios['ratio'].max())}]."
        )
        measured.append(
            f"Within the band [{_fmt(low)}, {_fmt(high)}]: {len(ratios) - above - below}; sEM faster "
            f"(ratio < {_fmt(low)}): {below}; sEM slower (ratio > {_fmt(high)}): {above}."
        )
        for name, group in ratios.groupby("experiment", sort=False):
            measured.append(f"{name}: median ratio {_fmt(group['ratio'].median())} over {len(group)} settings.")
    return Claim(
        4,
        "Linear rate comparable to EM",
        "Sinkhorn-EM converges at a linear rate comparable to that of EM.",
        evidence,
        [f"{FIGURES}/convergence_rates.pdf"],
        f"Rate ratio r = rate(sEM)/rate(vEM) per setting (error ratio per iteration, both linear). "
        f"Reproduced if the median r and every r are <= {_fmt(high)}; partially if the median is <= "
        f"{_fmt(high)} but some r exceed it; not reproduced if the median exceeds {_fmt(high)}; "
        f"r < {_fmt(low)} (sEM much faster) is reported separately and counts as comparable or better.",
        measured,
        verdict,
        ratios,
    )


# --------------------------------------------------------------------------------------
# Claim 5: restarts
# --------------------------------------------------------------------------------------
def restarts_needed(success, target: float = 0.95):
    r"""Independent restarts needed to reach the global optimum with probability ``target``.

    :math:`\lceil \log(1 - \text{target}) / \log(1 - p) \rceil` for success fraction
    :math:`p`: 1 when :math:`p = 1`, :math:`+\infty` when :math:`p = 0`.
    """
    if not 0 < target < 1:
        raise ValueError(f"restart target must lie in (0, 1), got {target!r}; fix report: restart_target.")
    p = np.asarray(success, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.ceil(np.log1p(-target) / np.log1p(-np.clip(p, 0.0, 1.0)))
    needed = np.where(p >= 1.0, 1.0, np.where(p <= 0.0, np.inf, needed))
    return needed if needed.ndim else float(needed)


def claim_restarts(init_sweep: pd.DataFrame, *, baseline: str = "vEM", restart_target: float = 0.95) -> Claim:
    """Claim 5: Sinkhorn-EM needs fewer random restarts than EM.

    One comparison per (K, d, weights, separation, init scheme): the success fractions of
    sEM and of ``baseline`` with their Wilson 95% intervals (``ci_low``, ``ci_high``),
    judged by :func:`superiority_verdict`. Restarts for ``restart_target`` probability of
    success (:func:`restarts_needed`) are reported alongside.
    """
    source = f"{TABLES}/init_sweep.csv"
    keys = ["K", "d", "weights", "separation", "init"]
    require_columns(init_sweep, [*keys, "method", "n_runs", "success", "ci_low", "ci_high"], source)
    sem = init_sweep[init_sweep["method"] == "sEM"]
    base = init_sweep[init_sweep["method"] == baseline]
    paired = _compare_intervals(sem, base, keys, "success", "ci_low", "ci_high")
    paired["restarts_sEM"] = restarts_needed(paired["success_sEM"], restart_target)
    paired[f"restarts_{baseline}"] = restarts_needed(paired["success_base"], restart_target)
    paired = paired.rename(columns=lambda c: c.replace("_base", f"_{baseline}"))
    measured = []
    if paired.empty:
        measured.append(f"init_sweep.csv has no setting with both sEM and {baseline}.")
    else:
        measured.append(_comparison_counts(paired, baseline))
        measured.append(
            f"Mean success over settings: sEM {_fmt(paired['success_sEM'].mean())}, {baseline} "
            f"{_fmt(paired[f'success_{baseline}'].mean())} (runs per setting and method: "
            f"{_fmt(int(init_sweep['n_runs'].min()))}-{_fmt(int(init_sweep['n_runs'].max()))})."
        )
        fewer = int((paired["restarts_sEM"] < paired[f"restarts_{baseline}"]).sum())
        more = int((paired["restarts_sEM"] > paired[f"restarts_{baseline}"]).sum())

        def restarts(values):
            median = float(np.median(values))
            return "infinite (most settings never succeed)" if math.isinf(median) else _fmt(median)

        measured.append(
            f"Random restarts for a {restart_target:.0%} chance of the global optimum: sEM needs fewer in "
            f"{fewer} settings, more in {more}; median over settings sEM {restarts(paired['restarts_sEM'])}, "
            f"{baseline} {restarts(paired[f'restarts_{baseline}'])}."
        )
        if "oEM" in set(init_sweep["method"]) and baseline != "oEM":
            oem = init_sweep[init_sweep["method"] == "oEM"]
            measured.append(f"For information, oEM: mean success {_fmt(oem['success'].mean())}.")
    detail_columns = [
        *keys,
        "success_sEM",
        "ci_low_sEM",
        "ci_high_sEM",
        f"success_{baseline}",
        f"ci_low_{baseline}",
        f"ci_high_{baseline}",
        "significantly_better",
        "significantly_worse",
    ]
    return Claim(
        5,
        "Fewer random restarts",
        "The EOT loss needs fewer random restarts than the likelihood: Sinkhorn-EM reaches the global "
        "optimum from random initialisations more often than EM.",
        [source],
        [f"{FIGURES}/init_success.pdf"],
        f"Per (K, d, weights, separation, init scheme): success fractions of sEM and {baseline} with Wilson "
        f"95% intervals. {SUPERIORITY_RULE}",
        measured,
        superiority_verdict(paired),
        paired[[c for c in detail_columns if c in paired.columns]],
    )


# --------------------------------------------------------------------------------------
# Claims 6 and 7: applications
# --------------------------------------------------------------------------------------
def claim_celegans(
    table: pd.DataFrame,
    *,
    metrics: Sequence[str] = ("accuracy_r1", "accuracy_r3"),
    baseline: str = "vEM",
    min_replicates: int = 2,
) -> Claim:
    """Claim 6: Sinkhorn-EM identifies more C. elegans neurons than EM.

    One comparison per (dataset, init, metric) of the final-iterate table ``celegans.csv``
    for each accuracy metric in ``metrics`` (fraction of neurons identified within radius
    r), using its Student-t intervals (``ci_low``, ``ci_high``) and
    :func:`superiority_verdict`. Datasets that are members of a pooled dataset (non-empty
    ``pool``) are left out, so each worm counts once; comparisons with fewer than
    ``min_replicates`` trials cannot be significant.
    """
    source = f"{TABLES}/celegans.csv"
    keys = ["dataset", "init", "metric"]
    require_columns(table, [*keys, "method", "mean", "ci_low", "ci_high", "n_trials"], source)
    rows = table[table["metric"].isin(list(metrics))]
    if "pool" in rows.columns:
        rows = rows[rows["pool"].isna() | (rows["pool"].astype(str).str.strip() == "")]
    sem = rows[rows["method"] == "sEM"]
    base = rows[rows["method"] == baseline]
    paired = _compare_intervals(sem, base, keys, "mean", "ci_low", "ci_high")
    trials = pd.concat([sem[[*keys, "n_trials"]], base[[*keys, "n_trials"]]]).groupby(keys)["n_trials"].min()
    paired = paired.merge(trials.rename("n_trials").reset_index(), on=keys, how="left")
    # With one trial the interval collapses to a point: no difference can be significant.
    too_few = ~(paired["n_trials"] >= min_replicates)
    paired.loc[too_few, ["significantly_better", "significantly_worse"]] = False
    paired = paired.rename(columns=lambda c: c.replace("_base", f"_{baseline}"))
    measured = []
    if paired.empty:
        measured.append(f"celegans.csv has no {list(metrics)} rows with both sEM and {baseline}.")
    else:
        measured.append(_comparison_counts(paired, baseline))
        for (dataset, init), group in paired.groupby(["dataset", "init"], sort=False):
            parts = ", ".join(
                f"{row.metric}: sEM {_fmt(row.mean_sEM)} vs {baseline} {_fmt(getattr(row, f'mean_{baseline}'))}"
                for row in group.itertuples()
            )
            measured.append(f"{dataset}, {init} init: {parts}.")
    return Claim(
        6,
        "C. elegans: more neurons identified",
        "On NeuroPAL C. elegans data, Sinkhorn-EM identifies more neurons (estimated centre within "
        "radius r of the true one) than EM (Mena et al. 2020, Section 5).",
        [source],
        [f"{FIGURES}/celegans_metrics.pdf", f"{FIGURES}/celegans_segmentation.pdf"],
        f"Per (dataset, init, metric in {list(metrics)}) at the last iterate: mean accuracy of sEM and "
        f"{baseline} with Student-t 95% intervals over trials (at least {min_replicates} trials for a "
        f"significant difference; members of pooled worm sets counted through the pool). {SUPERIORITY_RULE}",
        measured,
        superiority_verdict(paired),
        paired,
    )


def claim_osmfish(
    table: pd.DataFrame,
    *,
    baseline: str = "vEM",
    weight_settings: Sequence[str] = ("true", "perturbed"),
    confidence: float = 0.95,
    min_replicates: int = 2,
) -> Claim:
    """Claim 7: Sinkhorn-EM clusters osmFISH cells better than EM (ARI), also with perturbed weights.

    Per (target, features, weights) of ``osmfish.csv``: Student-t intervals of the mean ARI
    over seeds (``ari_mean +- t * ari_sd / sqrt(n_seeds)``), compared by
    :func:`superiority_verdict` separately for each weight setting in ``weight_settings``;
    the verdicts are combined by :func:`combine_verdicts` (all settings must agree for a
    clean verdict).
    """
    source = f"{TABLES}/osmfish.csv"
    keys = ["target", "features", "weights"]
    require_columns(table, [*keys, "method", "ari_mean", "ari_sd", "n_seeds"], source)
    table = table.assign(
        weights=table["weights"].map(lambda v: str(v).lower() if isinstance(v, (bool, np.bool_)) else str(v))
    )
    low, high = t_interval(table["ari_mean"], table["ari_sd"], table["n_seeds"], confidence)
    table = table.assign(ari_low=low, ari_high=high)
    enough = table["n_seeds"] >= min_replicates
    # Too few seeds: an interval that cannot separate anything.
    table.loc[~enough, "ari_low"], table.loc[~enough, "ari_high"] = -np.inf, np.inf
    sem, base = table[table["method"] == "sEM"], table[table["method"] == baseline]
    paired = _compare_intervals(sem, base, keys, "ari_mean", "ari_low", "ari_high")
    measured, verdicts = [], []
    for setting in weight_settings:
        subset = paired[paired["weights"] == setting]
        if subset.empty:
            measured.append(f"weights = {setting}: no rows with both sEM and {baseline}.")
            continue
        verdicts.append(superiority_verdict(subset))
        measured.append(
            f"weights = {setting}: " + _comparison_counts(subset, baseline) + f" Sub-verdict: {verdicts[-1]}."
        )
    for row in paired.itertuples():
        measured.append(
            f"{row.target} / {row.features} / weights {row.weights}: mean ARI sEM {_fmt(row.ari_mean_sEM)} vs "
            f"{baseline} {_fmt(row.ari_mean_base)}."
        )
    others = table[~table["method"].isin(["sEM", baseline])]
    if not others.empty:
        best = others.groupby("method")["ari_mean"].mean()
        measured.append(
            "For information, mean ARI over settings of the other methods: "
            + ", ".join(f"{m} {_fmt(v)}" for m, v in best.items())
            + "."
        )
    paired = paired.rename(columns=lambda c: c.replace("_base", f"_{baseline}"))
    return Claim(
        7,
        "Spatial transcriptomics: better clustering (ARI)",
        "On osmFISH mouse cortex cells, Sinkhorn-EM with known proportions clusters better (higher ARI "
        "against the annotation) than EM, including when the proportions are perturbed.",
        [source],
        [f"{FIGURES}/osmfish_ari.pdf", f"{FIGURES}/osmfish_map.pdf"],
        f"Per (target, features, weights): mean ARI of sEM and {baseline} with Student-t {confidence:.0%} "
        f"intervals over seeds (at least {min_replicates} seeds). The rule below is applied separately to "
        f"the weight settings {list(weight_settings)}; the claim is reproduced only if it is reproduced for "
        f"each, not reproduced if not reproduced for each, partially otherwise. {SUPERIORITY_RULE}",
        measured,
        combine_verdicts(verdicts),
        paired,
    )


def claim_dlpfc(per_seed: pd.DataFrame, **criteria) -> Claim:
    """Claim 9: spatial domains on DLPFC (this project's own test), see
    :func:`sinkhorn_em_repro.experiments.dlpfc.claim.claim_spatial_domains`."""
    from sinkhorn_em_repro.experiments.dlpfc.claim import claim_spatial_domains

    found = claim_spatial_domains(per_seed, **criteria)
    return Claim(9, **{name: getattr(found, name) for name in found.__dataclass_fields__})


# --------------------------------------------------------------------------------------
# Claim 8: identities
# --------------------------------------------------------------------------------------
def claim_identities(identities: pd.DataFrame) -> Claim:
    """Claim 8: NLL = semi-relaxed EOT value; EM = block-coordinate descent on F.

    Reads ``identities.csv`` (:func:`sinkhorn_em_repro.identities.run_identity_checks`); each row
    states its own criterion and whether it passed. Reproduced if every check passes, not
    reproduced if none does, partially otherwise.
    """
    source = f"{TABLES}/identities.csv"
    require_columns(identities, ["check", "identity", "description", "value", "criterion", "passed"], source)
    passed = _as_bool(identities["passed"])
    measured = [
        f"{row.check}: {row.description} = {row.value:.3g} ({row.criterion}: {'passed' if ok else 'FAILED'})."
        for row, ok in zip(identities.itertuples(), passed)
    ]
    return Claim(
        8,
        "NLL = semi-relaxed EOT; EM = block-coordinate descent",
        "The negative log-likelihood equals the semi-relaxed EOT value (minimum of the free energy F over "
        "couplings with rows 1/n), and one EM iteration is one round of block-coordinate descent on F "
        "(E-step = minimisation over the coupling, M-step = minimisation over the parameters), so F "
        "decreases at each half-step (seed note; Vayer & Lasalle 2025).",
        [source],
        [],
        "Each numerical check value meets its criterion (absolute differences and increases of F at "
        "rounding level, optimality margins > 0). Reproduced if all pass, not reproduced if none does, "
        "partially otherwise.",
        measured,
        _checks_verdict(list(passed)),
        identities,
    )


# --------------------------------------------------------------------------------------
# All claims
# --------------------------------------------------------------------------------------
def build_claims(
    tables: Mapping[str, pd.DataFrame | None],
    criteria: Mapping,
    *,
    fig2_theta0: float = -2.0,
    fig2_panel_alphas: Sequence[float] = (0.78, 0.9),
) -> list[Claim]:
    """Every claim, in order, from the result tables and the ``report`` config section.

    Parameters
    ----------
    tables : mapping
        ``landscape_minima``, ``landscape_2d_stationary``, ``fig2_runs``,
        ``convergence_rates``, ``convergence_general_k_rates``, ``init_sweep``,
        ``celegans``, ``osmfish``, ``identities`` -> DataFrame, and optionally ``dlpfc`` (the
        per-seed DLPFC table; claim 9 is added when it is given; the optional ones may be
        missing or None).
    criteria : mapping
        The validated ``report`` config section; its optional entry ``dlpfc`` holds the
        keywords of claim 9 (weights, baselines, confidence).
    fig2_theta0, fig2_panel_alphas
        The bad start and panel alphas of Figure 2 (``fig2`` config section).
    """

    def needed(name):
        if tables.get(name) is None:
            raise ValueError(
                f"the report needs the table {name!r} ({TABLES}/{name}.csv); add it to the report rule's inputs."
            )
        return tables[name]

    return [
        claim_shared_optimum(
            needed("landscape_minima"),
            tables.get("landscape_2d_stationary"),
            minimizer_tolerance=criteria["minimizer_tolerance"],
            gap_tolerance=criteria["gap_tolerance"],
        ),
        claim_fewer_spurious_minima(needed("landscape_minima"), tables.get("landscape_2d_stationary")),
        claim_fig2(needed("fig2_runs"), theta0=fig2_theta0, panel_alphas=fig2_panel_alphas),
        claim_convergence_rates(
            needed("convergence_rates"), tables.get("convergence_general_k_rates"), band=criteria["rate_ratio_band"]
        ),
        claim_restarts(needed("init_sweep"), baseline=criteria["baseline"], restart_target=criteria["restart_target"]),
        claim_celegans(
            needed("celegans"),
            metrics=criteria["celegans_metrics"],
            baseline=criteria["baseline"],
            min_replicates=criteria["min_replicates"],
        ),
        claim_osmfish(
            needed("osmfish"),
            baseline=criteria["baseline"],
            weight_settings=criteria["osmfish_weights"],
            confidence=criteria["confidence"],
            min_replicates=criteria["min_replicates"],
        ),
        claim_identities(needed("identities")),
        *([claim_dlpfc(tables["dlpfc"], **criteria.get("dlpfc", {}))] if tables.get("dlpfc") is not None else []),
    ]


# --------------------------------------------------------------------------------------
# Provenance: config hash, versions, cost of every rule, figures
# --------------------------------------------------------------------------------------
#: Config keys that say where the (checksummed) input bytes come from, not what is computed.
PROVENANCE_ONLY_KEYS = (("datasets", "mirror"), ("datasets", "timeout"))


def result_config(config: Mapping, ignore: Sequence[Sequence[str]] = PROVENANCE_ONLY_KEYS) -> dict:
    """``config`` without the keys listed in ``ignore`` (paths of nested keys).

    By default the dataset mirror and download timeout go: they change where the
    checksummed input files come from, never a result.
    """
    ignored = {tuple(path) for path in ignore}

    def strip(node, path):
        if not isinstance(node, Mapping):
            return node
        return {key: strip(value, (*path, key)) for key, value in node.items() if (*path, key) not in ignored}

    return strip(config, ())


def config_hash(config: Mapping, ignore: Sequence[Sequence[str]] = PROVENANCE_ONLY_KEYS) -> str:
    """sha256 of the canonical JSON dump (keys sorted, no whitespace) of :func:`result_config`.

    The same reproduction thus gets the same hash on every machine, whichever mirror it
    read the datasets from.
    """
    canonical = json.dumps(
        result_config(config, ignore), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


VERSIONED_PACKAGES = ("sinkhorn-em", "numpy", "scipy", "scikit-learn", "POT", "pandas", "matplotlib", "snakemake")


def software_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Python and package versions of the running interpreter ("not installed" if absent)."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _pattern_regex(pattern: str) -> re.Pattern:
    """Regex matching the files of a Snakemake path pattern ``a/{x}/b_{y,[0-9]+}.tsv``."""
    parts, position = [], 0
    for match in re.finditer(r"\{([^{}]+)\}", pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        _, _, constraint = match.group(1).partition(",")
        parts.append(f"(?:{constraint})" if constraint else ".+")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts) + r"\Z")


def _rule_of(path: str, patterns: Sequence[tuple[str, re.Pattern, int]]) -> str | None:
    # Several patterns may match; the one with most literal characters is the most specific.
    matches = [(literal, rule) for rule, regex, literal in patterns if regex.match(path)]
    return max(matches)[1] if matches else None


_LOG_WALL_TIME = re.compile(r"\[sinkhorn-em\] job wall time ([0-9.eE+-]+) s")


def rule_costs(rule_files: Mapping[str, Mapping], root: str | Path = ".") -> pd.DataFrame:
    """Wall time of every rule, from its benchmark files or, failing those, its logs.

    Parameters
    ----------
    rule_files : mapping
        Rule name -> ``{"benchmark": pattern or None, "log": [patterns]}`` (Snakemake path
        patterns relative to ``root``, as ``workflow.rules`` declares them).
    root : path
        Working directory of the run.

    Returns
    -------
    pandas.DataFrame
        One row per rule that ran and was measured: ``rule``, ``source`` (``benchmark``:
        Snakemake's ``s`` column, CPU time and peak RSS; ``log``: the wall time that
        :func:`sinkhorn_em_repro.pipeline.snakemake_job` prints at the end of the log), ``jobs``,
        ``total_s``, ``max_s``, ``cpu_s``, ``max_rss_mb``, sorted by decreasing total.
        Files found on disk are matched to rules by their patterns; files left by earlier
        runs with another config are included (``make clean-results`` removes them).
    """
    root = Path(root)
    benchmark_patterns, log_patterns = [], []
    for rule, files in rule_files.items():
        if files.get("benchmark"):
            pattern = str(files["benchmark"])
            benchmark_patterns.append((rule, _pattern_regex(pattern), len(re.sub(r"\{[^{}]+\}", "", pattern))))
        for pattern in files.get("log") or []:
            log_patterns.append((rule, _pattern_regex(str(pattern)), len(re.sub(r"\{[^{}]+\}", "", str(pattern)))))
    records = []
    benchmarked = {rule for rule, _, _ in benchmark_patterns}
    for directory, suffix, patterns, source in (
        ("results/benchmarks", "*.tsv", benchmark_patterns, "benchmark"),
        ("results/logs", "*.log", log_patterns, "log"),
    ):
        base = root / directory
        if not base.is_dir():
            continue
        for path in sorted(base.rglob(suffix)):
            relative = path.relative_to(root).as_posix()
            rule = _rule_of(relative, patterns)
            if rule is None or (source == "log" and rule in benchmarked):
                continue
            if source == "benchmark":
                try:
                    bench = pd.read_csv(path, sep="\t")
                except (pd.errors.EmptyDataError, pd.errors.ParserError):
                    continue
                if "s" not in bench.columns or bench.empty:
                    continue
                records.append(
                    {
                        "rule": rule,
                        "source": source,
                        "s": float(bench["s"].iloc[-1]),
                        "cpu": float(
                            pd.to_numeric(bench.get("cpu_time", pd.Series([np.nan])), errors="coerce").iloc[-1]
                        ),
                        "rss": float(
                            pd.to_numeric(bench.get("max_rss", pd.Series([np.nan])), errors="coerce").iloc[-1]
                        ),
                    }
                )
            else:
                found = _LOG_WALL_TIME.findall(path.read_text(errors="replace"))
                if found:
                    records.append(
                        {"rule": rule, "source": source, "s": float(found[-1]), "cpu": np.nan, "rss": np.nan}
                    )
    columns = ["rule", "source", "jobs", "total_s", "max_s", "cpu_s", "max_rss_mb"]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    costs = (
        frame.groupby(["rule", "source"], sort=False)
        .agg(
            jobs=("s", "size"),
            total_s=("s", "sum"),
            max_s=("s", "max"),
            cpu_s=("cpu", lambda c: c.sum(min_count=1)),
            max_rss_mb=("rss", "max"),
        )
        .reset_index()
    )
    return costs.sort_values(["total_s", "rule"], ascending=[False, True], kind="stable").reset_index(drop=True)[
        columns
    ]


def figure_rows(final_outputs: Sequence[str]) -> pd.DataFrame:
    """The figures among ``final_outputs`` (one row per stem): PDF, PNG, claims, content."""
    rows = {}
    for path in final_outputs:
        p = Path(path)
        if p.parent.as_posix() != FIGURES or p.suffix not in (".pdf", ".png"):
            continue
        row = rows.setdefault(p.stem, {"figure": p.stem, "pdf": "", "png": ""})
        row[p.suffix[1:]] = path
    out = []
    for stem, row in rows.items():
        claims = FIGURE_CLAIMS.get(stem, ())
        out.append({**row, "claims": ", ".join(str(c) for c in claims) or "-", "shows": FIGURE_CONTENT.get(stem, "-")})
    return pd.DataFrame(out, columns=["figure", "pdf", "png", "claims", "shows"])


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------
def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return _fmt(float(value), 4)
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: pd.DataFrame, max_rows: int | None = None) -> str:
    """A GitHub-flavoured Markdown table (floats to 4 significant digits, booleans yes/no)."""
    if table is None or table.empty:
        return "_(empty)_"
    shown = table if max_rows is None or len(table) <= max_rows else table.head(max_rows)
    lines = [
        "| " + " | ".join(_cell(c) for c in shown.columns) + " |",
        "|" + "|".join("---" for _ in shown.columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    if shown is not table:
        lines.append(f"\n_({len(table) - len(shown)} more rows in the evidence table.)_")
    return "\n".join(lines)


def _link(path: str) -> str:
    """A link relative to results/ (where REPORT.md lives)."""
    target = path[len("results/") :] if path.startswith("results/") else f"../{path}"
    return f"[`{path}`]({target})"


def render_report(
    claims: Sequence[Claim],
    *,
    versions: Mapping[str, str],
    config_digest: str,
    costs: pd.DataFrame,
    figures: pd.DataFrame,
    seed: int | None = None,
    max_detail_rows: int = 40,
) -> str:
    """The text of ``results/REPORT.md``.

    Sections: summary of verdicts, one section per claim (statement, evidence, criterion,
    measured numbers, verdict, per-setting table), figures, cost of every rule, software
    versions and config hash.
    """
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    lines = [
        "# Reproduction report",
        "",
        "Every claim of the papers (arXiv 2006.16548, 2605.03240, 2501.12005) next to the numbers this "
        "run measured and a verdict **computed** from the result tables by the criterion written under "
        "the claim (`sinkhorn_em_repro.experiments.report`; thresholds in the `report` config section). "
        "Nothing here is written by hand: rerun the pipeline and this file changes with the tables.",
        "",
        f"Config sha256 `{config_digest}`" + (f", base seed {seed}" if seed is not None else "") + ".",
        "",
        "Verdicts: " + ", ".join(f"{v} {counts[v]}" for v in VERDICTS) + ".",
        "",
        "| # | claim | verdict | evidence |",
        "|---|---|---|---|",
    ]
    for c in claims:
        lines.append(
            f"| {c.claim_id} | {c.title} | **{c.verdict}** | "
            + ", ".join(f"`{Path(p).name}`" for p in c.evidence)
            + " |"
        )
    for c in claims:
        lines += [
            "",
            f"## Claim {c.claim_id}: {c.title}",
            "",
            f"**Verdict: {c.verdict}**",
            "",
            f"*Claim.* {c.statement}",
            "",
            "*Evidence.* "
            + ", ".join(_link(p) for p in c.evidence)
            + ("; figures " + ", ".join(_link(p) for p in c.figures) if c.figures else "")
            + ".",
            "",
            f"*Criterion.* {c.criterion}",
            "",
            "*Measured.*",
            "",
        ]
        lines += [f"- {m}" for m in c.measured]
        if c.details is not None and not c.details.empty:
            lines += [
                "",
                "<details><summary>Per-setting numbers</summary>",
                "",
                markdown_table(c.details, max_detail_rows),
                "",
                "</details>",
            ]
    lines += [
        "",
        "## Figures",
        "",
        markdown_table(
            figures.assign(
                pdf=figures["pdf"].map(lambda p: _link(p) if p else "-"),
                png=figures["png"].map(lambda p: _link(p) if p else "-"),
            )
        )
        if not figures.empty
        else "_(no figures declared)_",
    ]
    lines += [
        "",
        "## What the reproduction costs",
        "",
        "Wall time of every rule that ran, summed over its jobs: from the `benchmark:` files under "
        "`results/benchmarks/` (column `s`; CPU time and peak RSS too) for the heavy rules, and from the "
        "wall time that `sinkhorn_em_repro.pipeline.snakemake_job` writes at the end of each log for the "
        "others. Rules with neither (downloads, `all`, this report) are not listed. Times are those of "
        "this machine and this run; with several cores, jobs overlap, so the total exceeds the elapsed time.",
        "",
    ]
    if costs.empty:
        lines.append("_(no benchmark or log timing found)_")
    else:
        total = float(costs["total_s"].sum())
        lines += [
            markdown_table(costs),
            "",
            f"Total over {int(costs['jobs'].sum())} measured jobs: {total:.1f} s ({total / 60:.1f} min) of wall time.",
        ]
    lines += ["", "## Software", "", "| package | version |", "|---|---|"]
    lines += [f"| {name} | {version} |" for name, version in versions.items()]
    lines += [
        "",
        f"Config hash: sha256 `{config_digest}` of the canonical JSON dump (sorted keys, no whitespace) "
        "of the validated config, defaults filled, without `datasets.mirror` and `datasets.timeout` "
        "(where the checksummed inputs come from, not what is computed).",
        "",
    ]
    return "\n".join(lines)


def report_from_files(
    table_paths: Mapping[str, str],
    *,
    criteria: Mapping,
    fig2: Mapping,
    config_sha256: str,
    rule_files: Mapping[str, Mapping],
    final_outputs: Sequence[str],
    seed: int | None = None,
    root: str | Path = ".",
) -> str:
    """Read the tables and the timing files of a finished run and return the report text.

    The only function of this module that reads files (the tables of ``table_paths``,
    the benchmark files and logs under ``root``); everything else takes DataFrames.

    Parameters
    ----------
    table_paths : mapping
        Table name (as in :func:`build_claims`) -> CSV path.
    criteria : mapping
        The validated ``report`` config section.
    fig2 : mapping
        ``{"theta0": ..., "panel_alphas": [...]}`` from the ``fig2`` config section.
    config_sha256 : str
        :func:`config_hash` of the validated config.
    rule_files : mapping
        Benchmark and log patterns per rule (see :func:`rule_costs`).
    final_outputs : sequence of str
        Every final output of the workflow (the figures are listed from it).
    seed : int, optional
        Base seed of the config, quoted in the report.
    root : path
        Working directory of the run.
    """
    from sinkhorn_em_repro.pipeline import read_table

    tables = {name: read_table(path) for name, path in table_paths.items()}
    claims = build_claims(tables, criteria, fig2_theta0=fig2["theta0"], fig2_panel_alphas=fig2["panel_alphas"])
    return render_report(
        claims,
        versions=software_versions(),
        config_digest=config_sha256,
        costs=rule_costs(rule_files, root),
        figures=figure_rows(final_outputs),
        seed=seed,
    )
