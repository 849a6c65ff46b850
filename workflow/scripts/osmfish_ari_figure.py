"""ARI distributions per method and weight setting (rule osmfish_ari_figure)."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.osmfish import plot_osmfish_ari

with snakemake_job(snakemake.log[0]):
    plot_osmfish_ari(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
