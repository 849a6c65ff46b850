# C. elegans family (see docs/ARCHITECTURE.md): neuron identification on simulated
# NeuroPAL voxels (sinkhorn_em_repro.experiments.celegans).
#
#   celegans_fit           one job per (dataset, method, trial chunk) -> results/celegans/runs/...
#   celegans_authors_fit   the authors' demo protocol on the protocol's neurons, one job per (method, trial
#                          chunk) -> results/celegans/authors/... (rows with protocol = authors)
#   celegans_summary       mean and 95% interval per iterate -> results/celegans/celegans_per_iteration.csv,
#                          the last iterate -> results/tables/celegans.csv, per trial ->
#                          results/tables/celegans_trials.csv (the pairs of the report's paired tests)
#   celegans_segmentation  voxel assignments of one trial of one worm -> results/celegans/segmentation.csv
#   celegans_*_figure      figures/celegans_metrics.pdf, figures/celegans_segmentation.pdf
#
# All methods of a trial see the same voxels and the same start: the seeds depend on
# (dataset, trial[, init]) only, never on the method or on the chunking.
from sinkhorn_em_repro.experiments.celegans import plan_celegans

CELEGANS_PLAN = plan_celegans(section("celegans"), config["seed"], DATASET_FILES)
CELEGANS_FITS = CELEGANS_PLAN["fits"]
CELEGANS_AUTHORS_FITS = CELEGANS_PLAN["authors_fits"]
CELEGANS_SEGMENTATION = CELEGANS_PLAN["segmentation"]
CELEGANS_JOB = "{dataset}/{method}/chunk{chunk}"
# The planned fit job of a rule's wildcards.
CELEGANS_FIT_OF = lambda wc: CELEGANS_FITS[
    f"{wc.dataset}/{wc.method}/chunk{wc.chunk}"
]  # noqa: E731


rule celegans_fit:
    input:
        lambda wc: [dataset_path(key) for key in CELEGANS_FIT_OF(wc)["inputs"]],
    output:
        out.CELEGANS_FIT.path,
    log:
        out.log("celegans", f"fit/{CELEGANS_JOB}"),
    benchmark:
        out.benchmark("celegans", f"fit/{CELEGANS_JOB}")
    wildcard_constraints:
        dataset="|".join(CELEGANS_PLAN["datasets"]) or "(?!)",
        method="vEM|oEM|sEM",
        chunk=r"\d+",
    threads: section("celegans")["threads"]
    resources:
        mem_mb=lambda wc: CELEGANS_FIT_OF(wc)["mem_mb"],
        runtime=lambda wc: CELEGANS_FIT_OF(wc)["runtime"],
    params:
        scene=lambda wc: CELEGANS_FIT_OF(wc)["scene"],
        cfg=lambda wc: CELEGANS_FIT_OF(wc)["cfg"],
    script:
        "../scripts/celegans_fit.py"


# The planned job of the authors' protocol variant for a rule's wildcards.
CELEGANS_AUTHORS_FIT_OF = lambda wc: CELEGANS_AUTHORS_FITS[
    f"{wc.dataset}/{wc.method}/chunk{wc.chunk}"
]  # noqa: E731


rule celegans_authors_fit:
    input:
        lambda wc: [dataset_path(key) for key in CELEGANS_AUTHORS_FIT_OF(wc)["inputs"]],
    output:
        out.CELEGANS_AUTHORS_FIT.path,
    log:
        out.log("celegans", f"authors_fit/{CELEGANS_JOB}"),
    benchmark:
        out.benchmark("celegans", f"authors_fit/{CELEGANS_JOB}")
    wildcard_constraints:
        dataset="|".join(
            sorted(
                {fit["wildcards"]["dataset"] for fit in CELEGANS_AUTHORS_FITS.values()}
            )
        )
        or "(?!)",
        method="vEM|oEM|sEM",
        chunk=r"\d+",
    resources:
        mem_mb=lambda wc: CELEGANS_AUTHORS_FIT_OF(wc)["mem_mb"],
        runtime=lambda wc: CELEGANS_AUTHORS_FIT_OF(wc)["runtime"],
    params:
        scene=lambda wc: CELEGANS_AUTHORS_FIT_OF(wc)["scene"],
        cfg=lambda wc: CELEGANS_AUTHORS_FIT_OF(wc)["cfg"],
    script:
        "../scripts/celegans_authors_fit.py"


rule celegans_summary:
    input:
        runs=[
            out.CELEGANS_FIT.format(**fit["wildcards"])
            for fit in CELEGANS_FITS.values()
        ]
        + [
            out.CELEGANS_AUTHORS_FIT.format(**fit["wildcards"])
            for fit in CELEGANS_AUTHORS_FITS.values()
        ],
    output:
        per_iteration=out.CELEGANS_PER_ITERATION.path,
        table=out.CELEGANS.path,
        trials=out.CELEGANS_TRIALS.path,
    log:
        out.log("celegans", "summary"),
    params:
        pools=CELEGANS_PLAN["pools"],
        confidence=section("celegans")["confidence"],
    script:
        "../scripts/celegans_summary.py"


rule celegans_segmentation:
    input:
        [dataset_path(key) for key in CELEGANS_SEGMENTATION["inputs"]],
    output:
        out.CELEGANS_SEGMENTATION.path,
    log:
        out.log("celegans", "segmentation"),
    benchmark:
        out.benchmark("celegans", "segmentation")
    resources:
        mem_mb=CELEGANS_SEGMENTATION["mem_mb"],
        runtime=CELEGANS_SEGMENTATION["runtime"],
    params:
        scene=CELEGANS_SEGMENTATION["scene"],
        cfg=CELEGANS_SEGMENTATION["cfg"],
    script:
        "../scripts/celegans_segmentation.py"


rule celegans_metrics_figure:
    input:
        rules.celegans_summary.output.per_iteration,
    output:
        **figure_outputs("celegans_metrics"),
    log:
        out.log("celegans", "metrics_figure"),
    script:
        "../scripts/celegans_metrics_figure.py"


rule celegans_segmentation_figure:
    input:
        rules.celegans_segmentation.output[0],
    output:
        **figure_outputs("celegans_segmentation"),
    log:
        out.log("celegans", "segmentation_figure"),
    script:
        "../scripts/celegans_segmentation_figure.py"


FINAL_OUTPUTS += out.final_outputs("celegans")
