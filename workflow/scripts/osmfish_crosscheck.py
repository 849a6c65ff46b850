"""oEM against scikit-learn's GaussianMixture from the same start (rule osmfish_crosscheck)."""

from sinkhorn_em_repro.datasets.osmfish import OsmFISHFeatures
from sinkhorn_em_repro.experiments.osmfish import crosscheck_oem_sklearn
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    features = OsmFISHFeatures.load(snakemake.input[0])
    write_table(crosscheck_oem_sklearn(features, **snakemake.params.cfg), snakemake.output[0])
