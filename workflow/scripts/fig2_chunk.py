"""One job of Figure 2: every method, theta0 and repetition for a chunk of the alpha* grid."""

from sinkhorn_em_repro.experiments.fig2 import run_fig2
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_fig2(**snakemake.params.cfg), snakemake.output[0])
