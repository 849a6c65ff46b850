"""Tissue coloured by the manual layers and by each method's best fit (rule dlpfc_map_figure)."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.dlpfc import plot_spatial_map

with snakemake_job(snakemake.log[0]):
    plot_spatial_map(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
