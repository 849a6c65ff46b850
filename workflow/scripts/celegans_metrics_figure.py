"""Figure: neuron-identification metrics vs iteration and vs time (rule celegans_metrics_figure)."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.celegans import plot_celegans_metrics

with snakemake_job(snakemake.log[0]):
    plot_celegans_metrics(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
