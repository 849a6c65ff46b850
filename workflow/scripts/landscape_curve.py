"""NLL(theta) and L_EOT(theta) of the symmetric model on the theta grid, for one alpha*."""

from sinkhorn_em_repro.experiments.landscape import run_landscape_1d
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_landscape_1d(**snakemake.params.cfg), snakemake.output[0])
