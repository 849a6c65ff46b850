"""Gather the 1-D curves of every alpha* into one table and tabulate the local minima of both losses."""

import pandas as pd

from sinkhorn_em_repro.experiments.landscape import landscape_minima
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    curves = pd.concat([read_table(path) for path in snakemake.input.curves], ignore_index=True)
    curves = curves.sort_values(["alpha", "theta"], kind="stable", ignore_index=True)
    write_table(curves, snakemake.output.curves)
    write_table(landscape_minima(curves, **snakemake.params.cfg), snakemake.output.minima)
