"""Draw Figure 2 from results/tables/fig2_runs.csv."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.fig2 import plot_fig2

with snakemake_job(snakemake.log[0]):
    plot_fig2(snakemake.input.table, snakemake.output.pdf, snakemake.output.png, **snakemake.params.cfg)
