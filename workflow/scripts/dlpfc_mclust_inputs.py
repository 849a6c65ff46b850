"""Features and our starts as CSV tables for R's mclust (rule dlpfc_mclust_inputs)."""

from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.mclust import mclust_inputs
from sinkhorn_em_repro.pipeline import snakemake_job

with snakemake_job(snakemake.log[0]):
    features = SpotFeatures.load(snakemake.input[0])
    data, starts, sigmas = mclust_inputs(features, **snakemake.params.cfg)
    # Full precision: R must start from exactly the parameters our methods start from.
    for table, path in (
        (data, snakemake.output.data),
        (starts, snakemake.output.starts),
        (sigmas, snakemake.output.sigmas),
    ):
        table.to_csv(path, index=False, float_format="%.17g", lineterminator="\n")
