"""Figure: voxels coloured by their assigned neuron, truth vs methods (rule celegans_segmentation_figure)."""

from sinkhorn_em_repro.pipeline import snakemake_job
from sinkhorn_em_repro.plotting.celegans import plot_celegans_segmentation

with snakemake_job(snakemake.log[0]):
    plot_celegans_segmentation(snakemake.input[0], snakemake.output.pdf, snakemake.output.png)
