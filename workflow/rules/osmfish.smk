# osmFISH family (see docs/ARCHITECTURE.md): clustering the 4,839 valid cells of the
# osmFISH mouse cortex into regions (K = 11) and cell types (K = 31) with known,
# perturbed or uniform proportions (sinkhorn_em_repro.experiments.osmfish).
#
#   osmfish_features    loom -> results/osmfish/features_<features>.npz (normalise, log1p, PCA [+ x, y])
#   osmfish_fit         one job per (target, features, weights, method, seed chunk)
#                       -> results/osmfish/fits/<target>/<features>/<weights>/<method>/chunk<i>.csv
#   osmfish_summary     tables/osmfish_seeds.csv (one row per seed) and tables/osmfish.csv
#   osmfish_crosscheck  tables/osmfish_crosscheck.csv (oEM vs scikit-learn from the same start)
#   osmfish_map         refit each method's best-likelihood seed -> results/osmfish/map.csv
#   osmfish_*_figure    figures/osmfish_ari.pdf, figures/osmfish_map.pdf
#
# All methods and weight settings of one seed index share the initialisation and the
# perturbation: seeds depend on (target, features, seed index) only.
from sinkhorn_em_repro.experiments.osmfish import plan_osmfish

OSMFISH = section("osmfish")
OSMFISH_PLAN = plan_osmfish(OSMFISH, config["seed"])
OSMFISH_CHUNKS = OSMFISH_PLAN["chunks"]
OSMFISH_MAP_FEATURES = OSMFISH_PLAN["map_features"]
OSMFISH_FIT_CFG = OSMFISH_PLAN["fit_cfg"]
OSMFISH_FIT_OUTPUTS = [
    out.OSMFISH_FIT.format(
        target=target, features=features, weights=weights, method=method, chunk=chunk
    )
    for target, features, weights, method in OSMFISH_PLAN["settings"]
    for chunk in range(len(OSMFISH_CHUNKS))
]


rule osmfish_features:
    input:
        dataset_path(OSMFISH["dataset"]),
    output:
        out.OSMFISH_FEATURES,
    log:
        out.log("osmfish", "features_{features}"),
    wildcard_constraints:
        features=r"expr|expr\+xy",
    params:
        cfg=lambda wc: {
            "n_pcs": OSMFISH["n_pcs"],
            "target_sum": OSMFISH["target_sum"],
            "with_xy": wc.features == "expr+xy",
        },
    script:
        "../scripts/osmfish_features.py"


rule osmfish_fit:
    input:
        out.OSMFISH_FEATURES,
    output:
        out.OSMFISH_FIT.path,
    log:
        out.log("osmfish", "fits/{target}/{features}/{weights}/{method}/chunk{chunk}"),
    benchmark:
        out.benchmark(
            "osmfish", "fits/{target}/{features}/{weights}/{method}/chunk{chunk}"
        )
    wildcard_constraints:
        target="region|celltype",
        features=r"expr|expr\+xy",
        weights="true|perturbed|uniform",
        method="vEM|oEM|sEM|sklearn",
        chunk=r"\d+",
    resources:
        runtime=lambda wc: OSMFISH_PLAN["fit_runtime"][wc.target][int(wc.chunk)],
    params:
        cfg=lambda wc: {
            "target": wc.target,
            "feature_set": wc.features,
            "weights": wc.weights,
            "method": wc.method,
            "seed_indices": OSMFISH_CHUNKS[int(wc.chunk)],
            **OSMFISH_FIT_CFG,
        },
    script:
        "../scripts/osmfish_fit.py"


rule osmfish_summary:
    input:
        OSMFISH_FIT_OUTPUTS,
    output:
        per_seed=out.OSMFISH_SEEDS.path,
        table=out.OSMFISH.path,
    log:
        out.log("osmfish", "summary"),
    script:
        "../scripts/osmfish_summary.py"


rule osmfish_crosscheck:
    input:
        out.OSMFISH_FEATURES.format(features=OSMFISH_MAP_FEATURES[0]),
    output:
        out.OSMFISH_CROSSCHECK.path,
    log:
        out.log("osmfish", "crosscheck"),
    params:
        cfg={
            "target": "region",
            "feature_set": OSMFISH_MAP_FEATURES[0],
            "n_seeds": OSMFISH["crosscheck_seeds"],
            "n_iter": OSMFISH["crosscheck_iterations"],
            "base_seed": config["seed"],
            "reg_covar": OSMFISH["reg_covar"],
        },
    script:
        "../scripts/osmfish_crosscheck.py"


rule osmfish_map:
    input:
        features=[
            out.OSMFISH_FEATURES.format(features=features)
            for features in OSMFISH_MAP_FEATURES
        ],
        per_seed=rules.osmfish_summary.output.per_seed,
    output:
        out.OSMFISH_MAP.path,
    log:
        out.log("osmfish", "map"),
    benchmark:
        out.benchmark("osmfish", "map")
    resources:
        runtime=OSMFISH_PLAN["map_runtime"],
    params:
        feature_sets=OSMFISH_MAP_FEATURES,
        cfg={"target": "region", "weights": OSMFISH["map_weights"], **OSMFISH_FIT_CFG},
    script:
        "../scripts/osmfish_map.py"


rule osmfish_ari_figure:
    input:
        rules.osmfish_summary.output.per_seed,
    output:
        **figure_outputs("osmfish_ari"),
    log:
        out.log("osmfish", "ari_figure"),
    script:
        "../scripts/osmfish_ari_figure.py"


rule osmfish_map_figure:
    input:
        rules.osmfish_map.output[0],
    output:
        **figure_outputs("osmfish_map"),
    log:
        out.log("osmfish", "map_figure"),
    script:
        "../scripts/osmfish_map_figure.py"


FINAL_OUTPUTS += out.final_outputs("osmfish")
