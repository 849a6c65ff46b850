"""ARI, NMI and the log-likelihood check of R's mclust fits (rule dlpfc_mclust_score)."""

from sinkhorn_em_repro.experiments.dlpfc.features import SpotFeatures
from sinkhorn_em_repro.experiments.dlpfc.mclust import score_mclust
from sinkhorn_em_repro.pipeline import read_table, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    inputs = snakemake.input
    scored = score_mclust(
        SpotFeatures.load(inputs.features),
        read_table(inputs.fits),
        read_table(inputs.labels),
        read_table(inputs.params),
        read_table(inputs.sigmas),
        **snakemake.params.cfg,
    )
    write_table(scored, snakemake.output[0])
