"""Stationary points of both 2-D losses: grid candidates refined by a root finder, then classified."""

from sinkhorn_em_repro.experiments.landscape import stationary_points_2d
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(stationary_points_2d(read_table(snakemake.input.grid), **snakemake.params.cfg), snakemake.output[0])
