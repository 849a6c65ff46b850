# C. elegans family (see docs/ARCHITECTURE.md): neuron identification on simulated
# NeuroPAL voxels (sinkhorn_em.experiments.celegans).
#
#   celegans_fit           one job per (dataset, method, trial chunk) -> results/celegans/runs/...
#   celegans_summary       mean and 95% interval per iterate -> results/celegans/celegans_per_iteration.csv
#                          and the last iterate -> results/tables/celegans.csv
#   celegans_segmentation  voxel assignments of one worm and trial -> results/celegans/segmentation.csv
#   celegans_*_figure      figures/celegans_metrics.pdf, figures/celegans_segmentation.pdf
#
# All methods of a trial see the same voxels and the same start: the seeds depend on
# (dataset, trial[, init]) only, never on the method or the chunking.
from sinkhorn_em.experiments.celegans import celegans_datasets, celegans_pools

CELEGANS = section("celegans")
CELEGANS_DATASETS = celegans_datasets(CELEGANS)
CELEGANS_POOLS = celegans_pools(CELEGANS_DATASETS)
CELEGANS_DIR = f"{RESULTS}/celegans"
CELEGANS_SEGMENTATION = CELEGANS["segmentation"]["dataset"]
if CELEGANS_SEGMENTATION not in CELEGANS_DATASETS:
    raise ValueError(
        f"celegans: segmentation: dataset {CELEGANS_SEGMENTATION!r} is not among the configured "
        f"datasets {sorted(CELEGANS_DATASETS)}; pick one of them or add its worm to celegans: real: worms"
    )

# Arguments shared by every fit (run_celegans_chunk / segmentation_map keywords).
_CELEGANS_FIT_KEYS = (
    "covariance_type", "epsilon", "reg_covar", "sinkhorn_tol", "sinkhorn_max_iter",
    "scale_log_mean", "scale_log_sd", "test_fraction", "init_variance",
)


def _celegans_chunks(dataset):
    """Trial indices of each chunk of `dataset` (at most trials_per_job per job)."""
    n_trials, size = CELEGANS_DATASETS[dataset]["n_trials"], CELEGANS["trials_per_job"]
    return [list(range(start, min(start + size, n_trials))) for start in range(0, n_trials, size)]


def _celegans_fit_outputs():
    return [
        f"{CELEGANS_DIR}/runs/{dataset}/{method}/chunk{chunk}.csv"
        for dataset in CELEGANS_DATASETS
        for method in CELEGANS["methods"]
        for chunk in range(len(_celegans_chunks(dataset)))
    ]


def _celegans_inputs(dataset):
    return [dataset_path(key) for key in CELEGANS_DATASETS[dataset]["inputs"]]


def _celegans_scene_args(dataset):
    """What the scripts need to rebuild the scene: spec, files, fDNC checksum."""
    spec = CELEGANS_DATASETS[dataset]
    sha256 = DATASET_FILES[spec["inputs"][0]]["sha256"] if spec.get("loader") == "fdnc" else None
    return {"dataset": dataset, "spec": spec, "min_position": CELEGANS["min_position"], "sha256": sha256}


def _celegans_work(dataset, n_trials):
    """Rough cost of a job in voxel-component products: n * K * iterations * inits * trials."""
    spec = CELEGANS_DATASETS[dataset]
    n_neurons = len(spec["neurons"]) if "neurons" in spec else {"head": 195, "tail": 45}[spec["region"]]
    n_voxels = spec.get("n_voxels") or spec["voxels_per_neuron"] * n_neurons * 2
    return n_voxels * n_neurons * (spec["n_iter"] + 1) * len(CELEGANS["inits"]) * n_trials, n_voxels * n_neurons


rule celegans_fit:
    input:
        lambda wc: _celegans_inputs(wc.dataset),
    output:
        f"{CELEGANS_DIR}/runs/{{dataset}}/{{method}}/chunk{{chunk}}.csv",
    wildcard_constraints:
        dataset="|".join(CELEGANS_DATASETS) or "(?!)",
        method="vEM|oEM|sEM",
        chunk=r"\d+",
    params:
        scene=lambda wc: _celegans_scene_args(wc.dataset),
        cfg=lambda wc: {
            "method": wc.method,
            "trials": _celegans_chunks(wc.dataset)[int(wc.chunk)],
            "base_seed": config["seed"],
            "inits": list(CELEGANS["inits"]),
            "n_iter": CELEGANS_DATASETS[wc.dataset]["n_iter"],
            "radii": list(CELEGANS["radii"]),
            **{key: CELEGANS[key] for key in _CELEGANS_FIT_KEYS},
        },
    log:
        f"{LOGS}/celegans/fit/{{dataset}}/{{method}}/chunk{{chunk}}.log",
    benchmark:
        f"{BENCHMARKS}/celegans/fit/{{dataset}}/{{method}}/chunk{{chunk}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        # (n, K) float arrays: cost, plan and a few temporaries, plus the interpreter.
        mem_mb=lambda wc: 400 + int(12 * 8 * _celegans_work(wc.dataset, 1)[1] / 1e6),
        # ~3e7 voxel-component products per second per core (sEM slower), generous margin.
        runtime=lambda wc: 5 + int(_celegans_work(wc.dataset, len(_celegans_chunks(wc.dataset)[int(wc.chunk)]))[0] / 3e7 / 60 * 10),
    script:
        "../scripts/celegans_fit.py"


rule celegans_summary:
    input:
        runs=_celegans_fit_outputs(),
    output:
        per_iteration=f"{CELEGANS_DIR}/celegans_per_iteration.csv",
        table=f"{TABLES}/celegans.csv",
    params:
        pools=CELEGANS_POOLS,
        confidence=CELEGANS["confidence"],
    log:
        f"{LOGS}/celegans/summary.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/celegans_summary.py"


rule celegans_segmentation:
    input:
        _celegans_inputs(CELEGANS_SEGMENTATION),
    output:
        f"{CELEGANS_DIR}/segmentation.csv",
    params:
        scene=_celegans_scene_args(CELEGANS_SEGMENTATION),
        cfg={
            "trial": CELEGANS["segmentation"]["trial"],
            "base_seed": config["seed"],
            "inits": list(CELEGANS["inits"]),
            "methods": list(CELEGANS["methods"]),
            "n_iter": CELEGANS_DATASETS[CELEGANS_SEGMENTATION]["n_iter"],
            **{key: CELEGANS[key] for key in _CELEGANS_FIT_KEYS},
        },
    log:
        f"{LOGS}/celegans/segmentation.log",
    benchmark:
        f"{BENCHMARKS}/celegans/segmentation.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=lambda wc: 400 + int(12 * 8 * _celegans_work(CELEGANS_SEGMENTATION, 1)[1] / 1e6),
        runtime=lambda wc: 5 + int(_celegans_work(CELEGANS_SEGMENTATION, 1)[0] / 3e7 / 60 * 10),
    script:
        "../scripts/celegans_segmentation.py"


rule celegans_metrics_figure:
    input:
        f"{CELEGANS_DIR}/celegans_per_iteration.csv",
    output:
        pdf=report(f"{FIGURES}/celegans_metrics.pdf", caption="../report/celegans_metrics.rst", category="C. elegans"),
        png=f"{FIGURES}/celegans_metrics.png",
    log:
        f"{LOGS}/celegans/metrics_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/celegans_metrics_figure.py"


rule celegans_segmentation_figure:
    input:
        f"{CELEGANS_DIR}/segmentation.csv",
    output:
        pdf=report(
            f"{FIGURES}/celegans_segmentation.pdf",
            caption="../report/celegans_segmentation.rst",
            category="C. elegans",
        ),
        png=f"{FIGURES}/celegans_segmentation.png",
    log:
        f"{LOGS}/celegans/segmentation_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/celegans_segmentation_figure.py"


FINAL_OUTPUTS.extend(
    [
        f"{TABLES}/celegans.csv",
        f"{FIGURES}/celegans_metrics.pdf",
        f"{FIGURES}/celegans_metrics.png",
        f"{FIGURES}/celegans_segmentation.pdf",
        f"{FIGURES}/celegans_segmentation.png",
    ]
)
