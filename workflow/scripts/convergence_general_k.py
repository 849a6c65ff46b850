"""Error against iteration of vEM, oEM and sEM on general K-component mixtures."""

from sinkhorn_em_repro.experiments.convergence import run_general_k
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_general_k(**snakemake.params.cfg), snakemake.output[0])
