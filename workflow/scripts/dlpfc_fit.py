"""Fit one method in one setting of one spatial sample for a chunk of seeds, every start (rule dlpfc_fit)."""

from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.fits import run_dlpfc_chunk
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    features = SpotFeatures.load(snakemake.input.features)
    partitions = read_table(snakemake.input.hc) if snakemake.input.hc else None
    write_table(run_dlpfc_chunk(features, hc_partitions=partitions, **snakemake.params.cfg), snakemake.output[0])
