"""Features of one spatial sample for every configured feature set (rule dlpfc_features)."""

from sinkhorn_em_repro.datasets.dlpfc import (
    DLPFC_LAYERS,
    layer_proportions,
    load_dlpfc_slice,
    load_mob,
    read_layer_map,
)
from sinkhorn_em_repro.experiments.dlpfc.features import build_spot_features
from sinkhorn_em_repro.pipeline import snakemake_job

with snakemake_job(snakemake.log[0]):
    cfg = dict(snakemake.params.cfg)
    inputs = snakemake.input
    if "layers" in inputs.keys():
        layer_map = read_layer_map(inputs.layers)
        sample = load_dlpfc_slice(inputs.counts, inputs.positions, layer_map, cfg["sample"])
        layers = DLPFC_LAYERS
        adjacent = layer_proportions(layer_map, cfg["adjacent"], layers) if cfg["adjacent"] else None
    else:
        sample, layers, adjacent = load_mob(inputs.counts), None, None
    print(f"{sample.name}: {sample.n_spots} spots, {sample.n_genes} genes, {int(sample.labelled.sum())} annotated")
    for feature_set, path in zip(cfg["feature_sets"], snakemake.output):
        features = build_spot_features(
            sample, feature_set, n_pcs=cfg["n_pcs"], target_sum=cfg["target_sum"], layers=layers, adjacent=adjacent
        )
        features.save(path)
