"""Gather the manifest rows of every synthetic dataset into results/synthetic/manifest.csv."""

import pandas as pd

from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    rows = pd.concat([read_table(path) for path in snakemake.input], ignore_index=True)
    write_table(rows.sort_values("name", kind="stable", ignore_index=True), snakemake.output[0])
