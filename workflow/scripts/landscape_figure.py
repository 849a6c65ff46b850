"""Figure: NLL and EOT loss of the symmetric model, one panel per alpha*."""

from sinkhorn_em_repro.pipeline import read_table, snakemake_job
from sinkhorn_em_repro.plotting.landscape import plot_landscape_1d

with snakemake_job(snakemake.log[0]):
    plot_landscape_1d(
        read_table(snakemake.input.curves),
        read_table(snakemake.input.minima),
        snakemake.output.pdf,
        png_path=snakemake.output.png,
    )
