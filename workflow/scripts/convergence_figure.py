"""Draw the convergence-rate figure from the trajectory and rate tables."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.convergence import plot_convergence

with snakemake_job(snakemake.log[0]):
    plot_convergence(
        snakemake.input.trajectories,
        snakemake.input.rates,
        snakemake.input.general_k,
        snakemake.input.general_k_rates,
        snakemake.output.pdf,
        snakemake.output.png,
        **snakemake.params.cfg,
    )
