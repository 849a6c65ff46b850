"""Draw a figure of the sweeps family from its aggregated table."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.sweeps import plot_epsilon, plot_init_success

PLOT = {"sweeps_init_figure": plot_init_success, "sweeps_epsilon_figure": plot_epsilon}

with snakemake_job(snakemake.log[0]):
    PLOT[snakemake.rule](snakemake.input.table, snakemake.output.pdf, snakemake.output.png)
