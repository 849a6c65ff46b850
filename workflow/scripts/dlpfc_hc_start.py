"""mclust's hierarchical partition of one spatial sample's features, per seed (rule dlpfc_hc_start)."""

from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.fits import hc_partitions
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    features = SpotFeatures.load(snakemake.input[0])
    write_table(hc_partitions(features, **snakemake.params.cfg), snakemake.output[0])
