"""results/REPORT.md: every claim with its measured numbers and computed verdict, versions, costs; verdicts.csv."""

import pandas as pd

from sinkhorn_em_repro.experiments.report import build_claims, report_text, verdict_records
from sinkhorn_em_repro.outputs import table
from sinkhorn_em_repro.pipeline import atomic_output, read_job_timings, read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    params = snakemake.params
    # Every input but the upstream list and the other scale's verdicts is a table of a claim,
    # named as in outputs.CLAIM_TABLES.
    extra = {"upstream", "other_verdicts"}
    tables = {name: read_table(path, table(name)) for name, path in snakemake.input.items() if name not in extra}
    other = pd.read_csv(snakemake.input.other_verdicts) if "other_verdicts" in snakemake.input.keys() else None
    claims = build_claims(
        tables, params.criteria, fig2_theta0=params.fig2["theta0"], fig2_panel_alphas=params.fig2["panel_alphas"]
    )
    text = report_text(
        tables,
        criteria=params.criteria,
        fig2=params.fig2,
        config_sha256=params.config_sha256,
        timings=read_job_timings(params.rule_files),
        seed=params.seed,
        scales=params.scales,
        claims=claims,
        other_verdicts=other,
    )
    write_table(verdict_records(claims, params.criteria["scale_name"]), snakemake.output.verdicts)
    with atomic_output(snakemake.output.report) as partial:
        partial.write_text(text)
