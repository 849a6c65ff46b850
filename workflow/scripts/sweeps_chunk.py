"""One job of the init or epsilon sweep: all runs of one dataset and block of inits."""

from sinkhorn_em_repro.experiments.sweeps import run_epsilon_sweep_chunk, run_init_sweep_chunk
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

RUN_CHUNK = {"init": run_init_sweep_chunk, "epsilon": run_epsilon_sweep_chunk}

with snakemake_job(snakemake.log[0]):
    write_table(RUN_CHUNK[snakemake.wildcards.sweep](**snakemake.params.cfg), snakemake.output[0])
