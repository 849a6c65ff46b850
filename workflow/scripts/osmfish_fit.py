"""Fit one method on one osmFISH setting for a chunk of seeds (rule osmfish_fit)."""

from sinkhorn_em_repro.datasets.osmfish import OsmFISHFeatures
from sinkhorn_em_repro.experiments.osmfish import run_osmfish_chunk
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    features = OsmFISHFeatures.load(snakemake.input[0])
    write_table(run_osmfish_chunk(features, **snakemake.params.cfg), snakemake.output[0])
