"""Concatenate the Figure 2 chunks into results/tables/fig2_runs.csv (canonical row order)."""

from sinkhorn_em_repro.experiments.fig2 import combine_chunks
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(combine_chunks([read_table(path) for path in snakemake.input.chunks]), snakemake.output.table)
