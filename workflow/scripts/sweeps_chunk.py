"""One job of the init or epsilon sweep: a batch of chunks (setting, dataset, block of inits) in one process."""

from sinkhorn_em_repro.experiments.sweeps import run_sweep_batch
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_sweep_batch(snakemake.wildcards.sweep, snakemake.params.chunks), snakemake.output[0])
