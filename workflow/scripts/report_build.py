"""results/REPORT.md: every claim with its measured numbers and computed verdict, versions, costs."""

from sinkhorn_em_repro.experiments.report import report_text
from sinkhorn_em_repro.outputs import table
from sinkhorn_em_repro.pipeline import atomic_output, read_job_timings, read_table, snakemake_job

with snakemake_job(snakemake.log[0]):
    params = snakemake.params
    # Every input but the upstream list is a table of a claim, named as in outputs.CLAIM_TABLES.
    tables = {name: read_table(path, table(name)) for name, path in snakemake.input.items() if name != "upstream"}
    text = report_text(
        tables,
        criteria=params.criteria,
        fig2=params.fig2,
        config_sha256=params.config_sha256,
        timings=read_job_timings(params.rule_files),
        seed=params.seed,
        scales=params.scales,
    )
    with atomic_output(snakemake.output[0]) as partial:
        partial.write_text(text)
