"""Mean and 95% interval of every C. elegans metric per iterate (rule celegans_summary)."""

import pandas as pd

from sinkhorn_em_repro.experiments.celegans import final_summary, final_trials, summarise_celegans
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    runs = pd.concat([read_table(path) for path in snakemake.input.runs], ignore_index=True)
    summary = summarise_celegans(runs, pools=snakemake.params.pools, confidence=snakemake.params.confidence)
    write_table(summary, snakemake.output.per_iteration)
    write_table(final_summary(summary), snakemake.output.table)
    write_table(final_trials(runs, pools=snakemake.params.pools), snakemake.output.trials)
