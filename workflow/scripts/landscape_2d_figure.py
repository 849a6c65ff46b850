"""Figure: heat-maps of both losses over free means with the stationary points marked."""

from sinkhorn_em_repro.pipeline import read_table, snakemake_job
from sinkhorn_em_repro.plotting.landscape import plot_landscape_2d

with snakemake_job(snakemake.log[0]):
    plot_landscape_2d(
        read_table(snakemake.input.grid),
        read_table(snakemake.input.stationary),
        snakemake.output.pdf,
        png_path=snakemake.output.png,
    )
