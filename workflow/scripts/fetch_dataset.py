"""Fetch one dataset into resources/ and verify its sha256 (rule fetch_dataset)."""

from sinkhorn_em_repro.datasets.fetch import fetch
from sinkhorn_em_repro.pipeline import snakemake_job

with snakemake_job(snakemake.log[0]):
    datasets = snakemake.config["datasets"]
    fetch(
        snakemake.params.url,
        snakemake.params.sha256,
        snakemake.output[0],
        mirror=datasets["mirror"],
        timeout=datasets["timeout"],
        mirror_relpath=snakemake.wildcards.relpath,
    )
