"""Features of the valid osmFISH cells for one feature set (rule osmfish_features)."""

from sinkhorn_em_repro.datasets.osmfish import build_features, load_osmfish
from sinkhorn_em_repro.pipeline import snakemake_job

with snakemake_job(snakemake.log[0]):
    data = load_osmfish(snakemake.input[0])
    print(f"{data.n_cells} valid cells, {data.n_genes} genes")
    build_features(data, **snakemake.params.cfg).save(snakemake.output[0])
