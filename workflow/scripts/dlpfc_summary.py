"""Per-seed table and summary of one spatial study (rule dlpfc_summary)."""

from sinkhorn_em_repro.experiments.dlpfc.summary import combine_per_seed, summarise_dlpfc
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    per_seed = combine_per_seed([read_table(path) for path in snakemake.input])
    write_table(per_seed, snakemake.output.per_seed)
    write_table(summarise_dlpfc(per_seed, confidence=snakemake.params.confidence), snakemake.output.table)
