"""Fetch one dataset into resources/ and verify its sha256 (rule fetch_dataset)."""

from sinkhorn_em.datasets.fetch import fetch
from sinkhorn_em.pipeline import snakemake_job

with snakemake_job(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    datasets = snakemake.config["datasets"]  # noqa: F821
    fetch(
        snakemake.params.url,  # noqa: F821
        snakemake.params.sha256,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        mirror=datasets["mirror"],
        timeout=datasets["timeout"],
        mirror_relpath=snakemake.wildcards.relpath,  # noqa: F821
    )
