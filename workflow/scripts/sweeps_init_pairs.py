"""Init-sweep runs side by side per start (the pairs of claim 5's paired test)."""

from sinkhorn_em_repro.experiments.sweeps import paired_starts
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(paired_starts(read_table(snakemake.input.runs)), snakemake.output[0])
