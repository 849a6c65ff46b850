"""Population iterates of vEM, oEM and sEM on the symmetric model, every setting."""

from sinkhorn_em_repro.experiments.convergence import run_symmetric_trajectories
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_symmetric_trajectories(**snakemake.params.cfg), snakemake.output[0])
