# Spatial-domain family (see docs/ARCHITECTURE.md): DLPFC Visium slices (K = 7 layers) and the
# mouse olfactory bulb (K = 5), clustered with known, adjacent-slice, perturbed or uniform layer
# proportions (sinkhorn_em_repro.experiments.dlpfc). Study "dlpfc" = the configured slices,
# study "mob" = the olfactory bulb (sample mOB).
#
#   dlpfc_features        counts (+ positions, layers) -> results/dlpfc/<sample>/features_<set>.npz
#   dlpfc_hc_start        mclust's hierarchical partition -> results/dlpfc/<sample>/hc_<set>.csv
#                         (dlpfc: starts has hc; shared by every method and setting)
#   dlpfc_fit             one job per (sample, features, covariance, weights, method, seed chunk),
#                         every configured start (hc fits of seed j in the job of seed j)
#   dlpfc_mclust_inputs   features and our starts as CSV for R            (dlpfc: mclust: enabled)
#   dlpfc_mclust          workflow/scripts/dlpfc_mclust.R: mclust EEE     (dlpfc: mclust: enabled)
#   dlpfc_mclust_score    ARI/NMI and log-likelihood check of the R fits  (dlpfc: mclust: enabled)
#   dlpfc_summary         tables/<study>.csv (one row per seed), tables/<study>_summary.csv
#   dlpfc_map             refit each method's best-likelihood seed -> results/dlpfc/<study>_map.csv
#   dlpfc_*_figure        figures/<study>_map.pdf, figures/<study>_ari.pdf
from snakemake.settings.types import DeploymentMethod

from sinkhorn_em_repro.experiments.dlpfc.features import FEATURE_SETS
from sinkhorn_em_repro.fitting import FitOptions
from sinkhorn_em_repro.experiments.dlpfc.mclust import require_rscript
from sinkhorn_em_repro.experiments.dlpfc.plan import (
    MOB_SAMPLE,
    plan_studies,
    slice_dataset_keys,
)

DLPFC = section("dlpfc")
DLPFC_PLAN = plan_studies(DLPFC, DATASET_FILES)
DLPFC_MCLUST = DLPFC["mclust"]["enabled"]
if DLPFC_MCLUST and (
    DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method
):
    # Before any job: a missing R would otherwise fail deep inside the run.
    require_rscript(DLPFC["mclust"]["rscript"])
DLPFC_STUDY_OF = {
    sample: study for study, plan in DLPFC_PLAN.items() for sample in plan.samples
}
DLPFC_INPUTS = {
    **{
        slice_id: {
            "counts": dataset_path(slice_dataset_keys(slice_id)["counts"]),
            "positions": dataset_path(slice_dataset_keys(slice_id)["positions"]),
            "layers": dataset_path(DLPFC["layers_dataset"]),
        }
        for slice_id in DLPFC["slices"]
    },
    MOB_SAMPLE: {"counts": dataset_path(DLPFC["mob"]["dataset"])},
}
DLPFC_HC = "hc" in DLPFC["starts"]
DLPFC_HC_FILE = out.SPATIAL_HC.path
DLPFC_FIT_CFG = {
    "base_seed": config["seed"],
    "perturb_strength": DLPFC["perturb_strength"],
}
# The section's fit options, one record; each job sets its setting's covariance type.
DLPFC_FIT_OPTIONS = FitOptions.from_config(DLPFC)
DLPFC_FEATURES = out.SPATIAL_FEATURES
DLPFC_MCLUST_DIR = out.SPATIAL_MCLUST_DIR
DLPFC_FIT_OUTPUTS = {
    study: [
        out.SPATIAL_FIT.format(
            sample=sample,
            features=features,
            covariance=covariance,
            weights=weights,
            method=method,
            chunk=chunk,
        )
        for sample in plan.samples
        for features, covariance, weights, method in plan.settings
        for chunk in range(len(plan.chunks))
    ]
    + (
        [
            out.SPATIAL_MCLUST_SCORED.format(sample=sample, features=features)
            for sample in plan.samples
            for features in DLPFC["feature_sets"]
        ]
        if DLPFC_MCLUST
        else []
    )
    for study, plan in DLPFC_PLAN.items()
}
# CPU seconds of one full-covariance fit of a DLPFC slice on one core (the slowest), with a
# x10 margin in the runtimes below for slow nodes.
DLPFC_SECONDS_PER_FIT = 1.0 * DLPFC["max_iter"] / 300


rule dlpfc_features:
    input:
        unpack(lambda wc: DLPFC_INPUTS[wc.sample]),
    output:
        [
            DLPFC_FEATURES.replace("{features}", features)
            for features in DLPFC["feature_sets"]
        ],
    log:
        out.log("dlpfc", "{sample}/features"),
    benchmark:
        out.benchmark("dlpfc", "{sample}/features")
    wildcard_constraints:
        sample=r"\d+|mOB",
    resources:
        # A dense 5,000 x 3,600 float matrix and its log1p copy.
        mem_mb=2000,
        runtime=10,
    params:
        cfg=lambda wc: {
            "sample": wc.sample,
            "adjacent": DLPFC["adjacent"].get(wc.sample),
            "n_pcs": DLPFC["n_pcs"],
            "target_sum": DLPFC["target_sum"],
            "feature_sets": list(DLPFC["feature_sets"]),
        },
    script:
        "../scripts/dlpfc_features.py"


rule dlpfc_hc_start:
    input:
        DLPFC_FEATURES,
    output:
        DLPFC_HC_FILE,
    log:
        out.log("dlpfc", "{sample}/hc_{features}"),
    benchmark:
        out.benchmark("dlpfc", "{sample}/hc_{features}")
    wildcard_constraints:
        sample=r"\d+|mOB",
        features=r"pca|smoothed|pca\+smoothed",
    resources:
        # The (m, m) merge costs of m <= 3,700 spots; about 6 s on all spots of a slice.
        mem_mb=1000,
        runtime=lambda wc: 2 + 2 * len(DLPFC_PLAN[DLPFC_STUDY_OF[wc.sample]].hc_seeds),
    params:
        cfg=lambda wc: {
            "sample": wc.sample,
            "feature_set": wc.features,
            "seed_indices": DLPFC_PLAN[DLPFC_STUDY_OF[wc.sample]].hc_seeds,
            "base_seed": config["seed"],
            "hc_model": DLPFC["hc"]["model"],
            "hc_subset": DLPFC["hc"]["subset"],
        },
    script:
        "../scripts/dlpfc_hc_start.py"


rule dlpfc_fit:
    input:
        features=DLPFC_FEATURES,
        hc=DLPFC_HC_FILE if DLPFC_HC else [],
    output:
        out.SPATIAL_FIT.path,
    log:
        out.log(
            "dlpfc",
            "{sample}/fits/{features}/{covariance}/{weights}/{method}/chunk{chunk}",
        ),
    benchmark:
        out.benchmark(
            "dlpfc",
            "{sample}/fits/{features}/{covariance}/{weights}/{method}/chunk{chunk}",
        )
    wildcard_constraints:
        sample=r"\d+|mOB",
        features=r"pca|smoothed|pca\+smoothed",
        covariance="tied|full",
        weights="oracle|adjacent|perturbed|uniform",
        method="vEM|oEM|sEM|sklearn",
        chunk=r"\d+",
    resources:
        runtime=lambda wc: 2
        + int(
            10
            * DLPFC_SECONDS_PER_FIT
            * len(DLPFC_PLAN[DLPFC_STUDY_OF[wc.sample]].chunks[int(wc.chunk)])
            / 60
        ),
    params:
        cfg=lambda wc: {
            "sample": wc.sample,
            "feature_set": wc.features,
            "options": DLPFC_FIT_OPTIONS.replace(covariance_type=wc.covariance),
            "weights": wc.weights,
            "method": wc.method,
            "seed_indices": DLPFC_PLAN[DLPFC_STUDY_OF[wc.sample]].chunks[
                int(wc.chunk)
            ],
            "starts": list(DLPFC["starts"]),
            **DLPFC_FIT_CFG,
        },
    script:
        "../scripts/dlpfc_fit.py"


rule dlpfc_mclust_inputs:
    input:
        DLPFC_FEATURES,
    output:
        data=f"{DLPFC_MCLUST_DIR}/data.csv",
        starts=f"{DLPFC_MCLUST_DIR}/starts.csv",
        sigmas=f"{DLPFC_MCLUST_DIR}/start_sigmas.csv",
    log:
        out.log("dlpfc", "{sample}/mclust/{features}/inputs"),
    wildcard_constraints:
        sample=r"\d+|mOB",
        features=r"pca|smoothed|pca\+smoothed",
    params:
        cfg=lambda wc: {
            "sample": wc.sample,
            "feature_set": wc.features,
            "weights": DLPFC_PLAN[DLPFC_STUDY_OF[wc.sample]].mclust_weights,
            "seed_indices": list(range(DLPFC["n_seeds"])),
            "base_seed": config["seed"],
            "perturb_strength": DLPFC["perturb_strength"],
            "reg_covar": DLPFC["reg_covar"],
        },
    script:
        "../scripts/dlpfc_mclust_inputs.py"


rule dlpfc_mclust:
    input:
        data=f"{DLPFC_MCLUST_DIR}/data.csv",
        starts=f"{DLPFC_MCLUST_DIR}/starts.csv",
        sigmas=f"{DLPFC_MCLUST_DIR}/start_sigmas.csv",
    output:
        fits=f"{DLPFC_MCLUST_DIR}/r_fits.csv",
        labels=f"{DLPFC_MCLUST_DIR}/r_labels.csv",
        params=f"{DLPFC_MCLUST_DIR}/r_params.csv",
        sigmas=f"{DLPFC_MCLUST_DIR}/r_sigmas.csv",
    log:
        out.log("dlpfc", "{sample}/mclust/{features}/mclust"),
    benchmark:
        out.benchmark("dlpfc", "{sample}/mclust/{features}/mclust")
    wildcard_constraints:
        sample=r"\d+|mOB",
        features=r"pca|smoothed|pca\+smoothed",
    conda:
        "../../envs/mclust.yaml"
    resources:
        runtime=lambda wc: 2 + int(10 * DLPFC_SECONDS_PER_FIT * DLPFC["n_seeds"] / 60),
    params:
        cfg=lambda wc: {
            "weights": DLPFC_PLAN[DLPFC_STUDY_OF[wc.sample]].mclust_weights,
            "tol": DLPFC["mclust"]["tol"],
            "max_iter": DLPFC["max_iter"],
            "hierarchical_start": DLPFC["mclust"]["hierarchical_start"],
            "hc_model": DLPFC["hc"]["model"],
            "hc_subset": DLPFC["hc"]["subset"],
            "seed": config["seed"],
        },
    script:
        "../scripts/dlpfc_mclust.R"


rule dlpfc_mclust_score:
    input:
        features=DLPFC_FEATURES,
        fits=f"{DLPFC_MCLUST_DIR}/r_fits.csv",
        labels=f"{DLPFC_MCLUST_DIR}/r_labels.csv",
        params=f"{DLPFC_MCLUST_DIR}/r_params.csv",
        sigmas=f"{DLPFC_MCLUST_DIR}/r_sigmas.csv",
    output:
        out.SPATIAL_MCLUST_SCORED.path,
    log:
        out.log("dlpfc", "{sample}/mclust/{features}/score"),
    wildcard_constraints:
        sample=r"\d+|mOB",
        features=r"pca|smoothed|pca\+smoothed",
    params:
        cfg=lambda wc: {
            "sample": wc.sample,
            "feature_set": wc.features,
            "base_seed": config["seed"],
        },
    script:
        "../scripts/dlpfc_mclust_score.py"


rule dlpfc_summary:
    input:
        lambda wc: DLPFC_FIT_OUTPUTS[wc.study],
    output:
        per_seed=f"{out.TABLES_DIR}/{{study}}.csv",
        table=f"{out.TABLES_DIR}/{{study}}_summary.csv",
    log:
        out.log("dlpfc", "{study}_summary"),
    wildcard_constraints:
        study="dlpfc|mob",
    params:
        confidence=DLPFC["confidence"],
    script:
        "../scripts/dlpfc_summary.py"


rule dlpfc_map:
    input:
        features=lambda wc: [
            DLPFC_FEATURES.format(sample=sample, features=DLPFC["map"]["features"])
            for sample in DLPFC_PLAN[wc.study].samples
        ],
        per_seed=rules.dlpfc_summary.output.per_seed,
    output:
        out.SPATIAL_MAP.path,
    log:
        out.log("dlpfc", "{study}_map"),
    benchmark:
        out.benchmark("dlpfc", "{study}_map")
    wildcard_constraints:
        study="dlpfc|mob",
    resources:
        runtime=lambda wc: 2
        + int(10 * DLPFC_SECONDS_PER_FIT * 4 * len(DLPFC_PLAN[wc.study].samples) / 60),
    params:
        samples=lambda wc: list(DLPFC_PLAN[wc.study].samples),
        cfg=lambda wc: {
            "feature_set": DLPFC["map"]["features"],
            "options": DLPFC_FIT_OPTIONS.replace(
                covariance_type=DLPFC["map"]["covariance_type"]
            ),
            "weights": DLPFC_PLAN[wc.study].map_weights,
            **DLPFC_FIT_CFG,
        },
    script:
        "../scripts/dlpfc_map.py"


rule dlpfc_ari_figure:
    input:
        rules.dlpfc_summary.output.per_seed,
    output:
        # One rule for both studies: the caption reads the study from the wildcard.
        pdf=report(
            f"{out.FIGURES_DIR}/{{study}}_ari.pdf",
            caption="../report/dlpfc_ari.rst",
            category=out.figure("dlpfc_ari").category,
        ),
        png=f"{out.FIGURES_DIR}/{{study}}_ari.png",
    log:
        out.log("dlpfc", "{study}_ari_figure"),
    wildcard_constraints:
        study="dlpfc|mob",
    script:
        "../scripts/dlpfc_ari_figure.py"


rule dlpfc_map_figure:
    input:
        rules.dlpfc_map.output[0],
    output:
        pdf=report(
            f"{out.FIGURES_DIR}/{{study}}_map.pdf",
            caption="../report/dlpfc_map.rst",
            category=out.figure("dlpfc_map").category,
        ),
        png=f"{out.FIGURES_DIR}/{{study}}_map.png",
    log:
        out.log("dlpfc", "{study}_map_figure"),
    wildcard_constraints:
        study="dlpfc|mob",
    script:
        "../scripts/dlpfc_map_figure.py"


FINAL_OUTPUTS += out.final_outputs("dlpfc")
