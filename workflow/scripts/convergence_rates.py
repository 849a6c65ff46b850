"""Linear rate of every run of a trajectory table (symmetric or general K)."""

from sinkhorn_em_repro.experiments.convergence import general_k_rates, symmetric_rates
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

RATES = {"convergence_rates": symmetric_rates, "convergence_general_k_rates": general_k_rates}

with snakemake_job(snakemake.log[0]):
    rates = RATES[snakemake.rule](read_table(snakemake.input.trajectories), **snakemake.params.cfg)
    write_table(rates, snakemake.output.table)
