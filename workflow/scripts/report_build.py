"""results/REPORT.md: every claim with its measured numbers and computed verdict, versions, costs."""

from pathlib import Path

from sinkhorn_em_repro.experiments.report import report_from_files
from sinkhorn_em_repro.pipeline import snakemake_job

with snakemake_job(snakemake.log[0]):
    inputs = snakemake.input
    params = snakemake.params
    tables = {name: path for name, path in inputs.items() if name != "upstream"}
    text = report_from_files(
        tables,
        criteria=params.criteria,
        fig2=params.fig2,
        config_sha256=params.config_sha256,
        seed=params.seed,
        rule_files=params.rule_files,
    )
    Path(snakemake.output[0]).write_text(text)
