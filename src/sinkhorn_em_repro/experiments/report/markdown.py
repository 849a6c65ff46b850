r"""The text of results/REPORT.md: claims, figures, costs and versions as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sinkhorn_em_repro.experiments.report.provenance import family_costs
from sinkhorn_em_repro.experiments.report.scale import claim_scale
from sinkhorn_em_repro.experiments.report.summary import side_by_side, verdict_records
from sinkhorn_em_repro.experiments.report.verdicts import (
    CHECK_RESULTS,
    CLAIM,
    GRADE_DEFINITIONS,
    IMPLEMENTATION_CHECK,
    VERDICTS,
    Claim,
    _fmt,
)
from sinkhorn_em_repro.outputs import FIGURES, RESULTS, Figure

__all__ = ["figure_rows", "markdown_table", "render_report"]


def figure_rows(figures: Sequence[Figure] = FIGURES) -> pd.DataFrame:
    """One row per declared figure: its PDF, PNG, the claims it supports and what it shows."""
    rows = [
        {
            "figure": each.stem,
            "pdf": each.pdf,
            "png": each.png,
            "claims": ", ".join(str(c) for c in each.claims) or "-",
            "shows": each.shows,
        }
        for each in figures
    ]
    return pd.DataFrame(rows, columns=["figure", "pdf", "png", "claims", "shows"])


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
    target = path[len(RESULTS) + 1 :] if path.startswith(f"{RESULTS}/") else f"../{path}"
    return f"[`{path}`]({target})"


def render_report(
    claims: Sequence[Claim],
    *,
    versions: Mapping[str, str],
    config_digest: str,
    costs: pd.DataFrame,
    figures: pd.DataFrame,
    seed: int | None = None,
    scales: Mapping[str, str] | None = None,
    max_detail_rows: int = 40,
    scale_name: str = "default",
    other_verdicts: pd.DataFrame | None = None,
) -> str:
    """The text of ``results/REPORT.md``.

    Sections: summary of verdicts (claims with their sources, then the implementation
    checks), the scale of the run per family (``scales``, from
    :func:`~sinkhorn_em_repro.experiments.report.scale.family_scales`), one section per claim
    and per check (statement, source, scale, evidence, criterion, measured numbers, verdict
    or result, per-setting table), figures, cost of every family and rule, software versions
    and config hash. The first table sets every claim's verdict at this run's scale
    (``scale_name``) beside the verdicts of a run at the other scale (``other_verdicts``, that
    run's ``verdicts.csv``), with the grade definitions under it.
    """
    scales = dict(scales or {})
    findings = [c for c in claims if c.kind == CLAIM]
    checks = [c for c in claims if c.kind == IMPLEMENTATION_CHECK]
    counts = {v: sum(c.verdict == v for c in findings) for v in VERDICTS}
    lines = [
        "# Reproduction report",
        "",
        "Every claim of the papers (arXiv 2006.16548, 2605.03240, 2501.12005), and this project's own tests "
        "of them, next to the numbers this run measured and a verdict **computed** from the result tables by "
        "the criterion written under the claim (`sinkhorn_em_repro.experiments.report`; thresholds in the "
        "`report` config section). Each claim names its source: the part of the paper that could be read "
        "(the abstracts, and the authors' public code), or \"this project's own test\". Nothing here is "
        "written by hand: rerun the pipeline and this file changes with the tables.",
        "",
        f"Config sha256 `{config_digest}`" + (f", base seed {seed}" if seed is not None else "") + ".",
        "",
        "Verdicts: " + ", ".join(f"{v} {counts[v]}" for v in VERDICTS) + ".",
        "",
        "## Verdicts at a glance",
        "",
        f"This run is at the **{scale_name}** scale; the other scale's column comes from the `verdicts.csv` of a "
        'run at that scale (`report: other_verdicts`), or reads "not run". *comparisons*: B significantly '
        "better / W significantly worse (Holm) / n comparisons, the counts the grade is computed from.",
        "",
        markdown_table(side_by_side(verdict_records(claims, scale_name), scale_name, other_verdicts)),
        "",
        "### Verdict grades",
        "",
        "Claims 5-7 and 9 (sEM better than a baseline) are graded from their comparisons' counts; claims 1-4 "
        "from their sub-checks (reproduced: all hold; partially reproduced: some hold; not reproduced: none).",
        "",
        *[f"- **{grade}**: {rule}" for grade, rule in GRADE_DEFINITIONS.items()],
        "",
        "| # | claim | source | verdict | evidence |",
        "|---|---|---|---|---|",
    ]
    for c in findings:
        lines.append(
            f"| {c.label} | {c.title} | {_cell(c.source)} | **{c.verdict}** | "
            + ", ".join(f"`{Path(p).name}`" for p in c.evidence)
            + " |"
        )
    if checks:
        results = {r: sum(c.verdict == r for c in checks) for r in CHECK_RESULTS}
        lines += [
            "",
            "Implementation checks (statements that hold by theorem; a failure is a bug of the code, not a "
            "finding about the method): " + ", ".join(f"{r} {n}" for r, n in results.items() if n) + ".",
            "",
            "| # | check | source | result | evidence |",
            "|---|---|---|---|---|",
        ]
        for c in checks:
            lines.append(
                f"| {c.claim_id} | {c.title} | {_cell(c.source)} | **{c.verdict}** | "
                + ", ".join(f"`{Path(p).name}`" for p in c.evidence)
                + " |"
            )
    if scales:
        lines += [
            "",
            "## Scale of this run",
            "",
            "What every verdict below was computed from (samples, trials, datasets, initialisations, seeds), "
            "from the config of this run; each claim repeats the lines of the families it reads.",
            "",
            markdown_table(pd.DataFrame({"family": list(scales), "scale": list(scales.values())})),
        ]
    for c in [*findings, *checks]:
        heading, outcome = ("Claim", "Verdict") if c.kind == CLAIM else ("Implementation check", "Result")
        scale = claim_scale(c.claim_id, scales)
        lines += [
            "",
            f"## {heading} {c.label}: {c.title}",
            "",
            f"**{outcome}: {c.verdict}**",
            "",
            f"*{'Claim' if c.kind == CLAIM else 'Statement'}.* {c.statement}",
            "",
            f"*Source.* {c.source or 'not stated'}.",
            "",
            *([f"*Scale.* {scale}.", ""] if scale else []),
            "*Evidence.* "
            + ", ".join(_link(p) for p in c.evidence)
            + ("; figures " + ", ".join(_link(p) for p in c.figures) if c.figures else "")
            + ".",
            "",
            f"*Criterion.* {c.criterion}",
            "",
            *([f"*Test.* {c.test}. *Effect.* {c.effect}.", ""] if c.test else []),
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
        families = family_costs(costs)
        cpu = float(families["cpu_s"].sum(min_count=1)) if families["cpu_s"].notna().any() else float("nan")
        lines += [
            "Per family (CPU time from the `benchmark:` files, whole job processes, and from the job logs, "
            "the job body without the interpreter's start-up):",
            "",
            markdown_table(families),
            "",
            f"CPU time measured: {cpu:.0f} s ({cpu / 3600:.2f} CPU-hours), Snakemake's own scheduling not included.",
            "",
            "Per rule:",
            "",
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
