r"""Every claim from the result tables, and the report of a finished run (the only part that reads files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from sinkhorn_em_repro import outputs
from sinkhorn_em_repro.experiments.report.comparison_claims import (
    claim_celegans,
    claim_osmfish,
    claims_restarts,
    claims_spatial_domains,
)
from sinkhorn_em_repro.experiments.report.markdown import figure_rows, render_report
from sinkhorn_em_repro.experiments.report.model_claims import (
    claim_convergence_rates,
    claim_fewer_spurious_minima,
    claim_fig2,
    claim_identities,
    claim_shared_optimum,
)
from sinkhorn_em_repro.experiments.report.provenance import rule_costs, software_versions
from sinkhorn_em_repro.experiments.report.verdicts import Claim

__all__ = ["build_claims", "report_text"]


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
        per-seed DLPFC table: claim 9 is added when it is given); the optional ones may be
        missing or None.
    criteria : mapping
        The validated ``report`` config section; its optional entry ``dlpfc`` holds the keywords
        of claim 9 (weights, baselines, confidence).
    fig2_theta0, fig2_panel_alphas
        The bad start and panel alphas of Figure 2 (``fig2`` config section).
    """

    def needed(name):
        if tables.get(name) is None:
            raise ValueError(
                f"the report needs the table {name!r} ({outputs.table(name).path}); add it to the report rule's inputs."
            )
        return tables[name]

    level = criteria["significance_level"]
    return [
        claim_shared_optimum(
            needed("landscape_minima"),
            tables.get("landscape_2d_stationary"),
            minimizer_tolerance=criteria["minimizer_tolerance"],
        ),
        claim_fewer_spurious_minima(needed("landscape_minima"), tables.get("landscape_2d_stationary")),
        claim_fig2(needed("fig2_runs"), theta0=fig2_theta0, panel_alphas=fig2_panel_alphas),
        claim_convergence_rates(
            needed("convergence_rates"), tables.get("convergence_general_k_rates"), band=criteria["rate_ratio_band"]
        ),
        *claims_restarts(
            needed("init_sweep"),
            tables.get("init_sweep_pairs"),
            baseline=criteria["baseline"],
            restart_target=criteria["restart_target"],
            level=level,
        ),
        claim_celegans(
            needed("celegans"),
            tables.get("celegans_trials"),
            metric=criteria["celegans_metric"],
            baseline=criteria["baseline"],
            min_replicates=criteria["min_replicates"],
            level=level,
        ),
        claim_osmfish(
            needed("osmfish"),
            tables.get("osmfish_seeds"),
            baseline=criteria["baseline"],
            weight_settings=criteria["osmfish_weights"],
            min_replicates=criteria["min_replicates"],
            level=level,
        ),
        claim_identities(needed("identities"), tables.get("landscape_minima"), gap_tolerance=criteria["gap_tolerance"]),
        *(
            claims_spatial_domains(tables["dlpfc"], level=level, **criteria.get("dlpfc", {}))
            if tables.get("dlpfc") is not None
            else []
        ),
    ]


def report_text(
    tables: Mapping[str, pd.DataFrame],
    *,
    criteria: Mapping,
    fig2: Mapping,
    config_sha256: str,
    timings: pd.DataFrame,
    seed: int | None = None,
    scales: Mapping[str, str] | None = None,
    claims: Sequence[Claim] | None = None,
    other_verdicts: pd.DataFrame | None = None,
) -> str:
    """The text of ``results/REPORT.md`` from the tables and the job timings of a finished run.

    Parameters
    ----------
    tables : mapping
        Table name (as in :data:`sinkhorn_em_repro.outputs.CLAIM_TABLES`) -> DataFrame read
        with the declared column types.
    criteria : mapping
        The validated ``report`` config section.
    fig2 : mapping
        ``{"theta0": ..., "panel_alphas": [...]}`` from the ``fig2`` config section.
    config_sha256 : str
        :func:`config_hash` of the validated config.
    timings : pandas.DataFrame
        One row per timed job (:func:`sinkhorn_em_repro.pipeline.read_job_timings`).
    seed : int, optional
        Base seed of the config, quoted in the report.
    scales : mapping, optional
        Family -> the scale of its run
        (:func:`~sinkhorn_em_repro.experiments.report.scale.family_scales` of the config).
    claims : list of Claim, optional
        The claims of :func:`build_claims` when already computed.
    other_verdicts : pandas.DataFrame, optional
        ``verdicts.csv`` of a run at the other scale (``criteria["scale_name"]`` names this one).
    """
    if claims is None:
        claims = build_claims(tables, criteria, fig2_theta0=fig2["theta0"], fig2_panel_alphas=fig2["panel_alphas"])
    return render_report(
        claims,
        versions=software_versions(),
        config_digest=config_sha256,
        costs=rule_costs(timings),
        figures=figure_rows(),
        seed=seed,
        scales=scales,
        scale_name=criteria.get("scale_name", "default"),
        other_verdicts=other_verdicts,
    )
