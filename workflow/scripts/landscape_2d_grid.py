"""Both losses and their gradients on the (theta1, theta2) grid of free means."""

from sinkhorn_em_repro.experiments.landscape import run_landscape_2d
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_landscape_2d(**snakemake.params.cfg), snakemake.output[0])
