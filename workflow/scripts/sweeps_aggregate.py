"""Concatenate the chunk tables of a sweep and summarise them per setting and method."""

import pandas as pd

from sinkhorn_em_repro.experiments.sweeps import summarise_epsilon_sweep, summarise_init_sweep
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

SUMMARISE = {"init": summarise_init_sweep, "epsilon": summarise_epsilon_sweep}

with snakemake_job(snakemake.log[0]):
    runs = pd.concat([read_table(path) for path in snakemake.input.chunks], ignore_index=True)
    write_table(runs, snakemake.output.runs)
    write_table(SUMMARISE[snakemake.wildcards.sweep](runs), snakemake.output.table)
