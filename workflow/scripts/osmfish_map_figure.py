"""Spatial map of the true regions and of each method's clustering (rule osmfish_map_figure)."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.osmfish import plot_osmfish_map

with snakemake_job(snakemake.log[0]):
    plot_osmfish_map(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
