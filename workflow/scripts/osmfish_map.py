"""Cell labels of each method's best-likelihood seed, for the region map (rule osmfish_map)."""

from sinkhorn_em_repro.datasets.osmfish import OsmFISHFeatures
from sinkhorn_em_repro.experiments.osmfish import best_seed_maps
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    features = {
        name: OsmFISHFeatures.load(path) for name, path in zip(snakemake.params.feature_sets, snakemake.input.features)
    }
    per_seed = read_table(snakemake.input.per_seed)
    write_table(best_seed_maps(features, per_seed, **snakemake.params.cfg), snakemake.output[0])
