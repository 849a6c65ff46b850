"""sEM with the exact E-step and with the authors' Sinkhorn sweeps on a slice of Figure 2."""

from sinkhorn_em_repro.experiments.fig2 import run_estep_check
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_estep_check(**snakemake.params.cfg), snakemake.output.table)
