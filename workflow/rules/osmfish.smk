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
from sinkhorn_em_repro.experiments.osmfish import fit_settings, seed_chunks

OSMFISH = section("osmfish")
OSMFISH_SETTINGS = fit_settings(
    OSMFISH["feature_sets"],
    OSMFISH["weight_settings"],
    OSMFISH["methods"],
    OSMFISH["sklearn_weights"],
)
OSMFISH_CHUNKS = seed_chunks(OSMFISH["n_seeds"], OSMFISH["seeds_per_job"])
OSMFISH_MAP_FEATURES = list(OSMFISH["feature_sets"].get("region", []))
if not OSMFISH_SETTINGS:
    raise ValueError(
        "osmfish: feature_sets, weight_settings and methods select no fit; configure at least one"
    )
if not OSMFISH_MAP_FEATURES or OSMFISH["map_weights"] not in OSMFISH["weight_settings"]:
    raise ValueError(
        "osmfish: the region map needs feature_sets: region non-empty and map_weights among weight_settings "
        f"(got feature_sets {OSMFISH['feature_sets']}, map_weights {OSMFISH['map_weights']!r})"
    )

# Keywords shared by every fit (run_osmfish_chunk / best_seed_maps).
OSMFISH_FIT_CFG = {
    "base_seed": config["seed"],
    **{
        key: OSMFISH[key]
        for key in (
            "perturb_strength",
            "tol",
            "max_iter",
            "reg_covar",
            "epsilon",
            "sinkhorn_tol",
            "sinkhorn_max_iter",
        )
    },
}
OSMFISH_FIT_OUTPUTS = [
    out.OSMFISH_FIT.format(
        target=target, features=features, weights=weights, method=method, chunk=chunk
    )
    for target, features, weights, method in OSMFISH_SETTINGS
    for chunk in range(len(OSMFISH_CHUNKS))
]
# CPU seconds per fit at max_iter 100 on one core (sEM, the slowest), with a x10 margin
# in the runtimes below for slow nodes and tighter tolerances.
OSMFISH_SECONDS_PER_FIT = {
    target: seconds * OSMFISH["max_iter"] / 100
    for target, seconds in {"region": 0.3, "celltype": 1.5}.items()
}


rule osmfish_features:
    input:
        dataset_path(OSMFISH["dataset"]),
    output:
        out.OSMFISH_FEATURES,
    log:
        out.log("osmfish", "features_{features}"),
    wildcard_constraints:
        features=r"expr|expr\+xy",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
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
    conda:
        CONDA_ENV
    threads: 1
    resources:
        # 4,839 cells x 31 components: a few MB of arrays; the interpreter dominates.
        mem_mb=600,
        runtime=lambda wc: 2
        + int(
            10
            * OSMFISH_SECONDS_PER_FIT[wc.target]
            * len(OSMFISH_CHUNKS[int(wc.chunk)])
            / 60
        ),
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
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/osmfish_summary.py"


rule osmfish_crosscheck:
    input:
        out.OSMFISH_FEATURES.format(features=OSMFISH_MAP_FEATURES[0]),
    output:
        out.OSMFISH_CROSSCHECK.path,
    log:
        out.log("osmfish", "crosscheck"),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=600,
        runtime=5,
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
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=600,
        runtime=2
        + int(
            10 * OSMFISH_SECONDS_PER_FIT["region"] * 4 * len(OSMFISH_MAP_FEATURES) / 60
        ),
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
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=800,
        runtime=5,
    script:
        "../scripts/osmfish_ari_figure.py"


rule osmfish_map_figure:
    input:
        rules.osmfish_map.output[0],
    output:
        **figure_outputs("osmfish_map"),
    log:
        out.log("osmfish", "map_figure"),
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=800,
        runtime=5,
    script:
        "../scripts/osmfish_map_figure.py"


FINAL_OUTPUTS += out.final_outputs("osmfish")
