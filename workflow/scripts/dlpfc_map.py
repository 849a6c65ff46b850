"""Spot labels of each method's best-likelihood seed, for the tissue maps (rule dlpfc_map)."""

from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.summary import best_seed_maps
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    features = {
        sample: SpotFeatures.load(path) for sample, path in zip(snakemake.params.samples, snakemake.input.features)
    }
    per_seed = read_table(snakemake.input.per_seed)
    write_table(best_seed_maps(features, per_seed, **snakemake.params.cfg), snakemake.output[0])
