"""ARI distributions per method, weights, features and covariance type (rule dlpfc_ari_figure)."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.dlpfc import plot_spatial_ari

with snakemake_job(snakemake.log[0]):
    plot_spatial_ari(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
