"""Implementation check 8 of the report: numerical checks of NLL = semi-relaxed EOT and EM = block-coordinate descent."""

from sinkhorn_em_repro.identities import run_identity_checks
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    write_table(run_identity_checks(**snakemake.params.cfg), snakemake.output[0])
