# Rules of the synthetic family (issue 4, section 1): benchmark datasets with their seeds.
# One job per dataset writes results/synthetic/<name>.npz (data, labels, true parameters,
# seed) and a one-row manifest; one job gathers the rows into results/synthetic/manifest.csv.
# Dataset names encode every parameter (see sinkhorn_em_repro.experiments.synthetic.benchmark_specs).
from sinkhorn_em_repro.experiments.synthetic import benchmark_specs

SYNTHETIC_SPECS = benchmark_specs(section("synthetic"))
SYNTHETIC_DIR = f"{RESULTS}/synthetic"


rule synthetic_dataset:
    output:
        data=f"{SYNTHETIC_DIR}/{{name}}.npz",
        manifest=f"{SYNTHETIC_DIR}/manifest/{{name}}.csv",
    log:
        f"{LOGS}/synthetic/{{name}}.log",
    wildcard_constraints:
        name="[A-Za-z0-9_.-]+",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        spec=lambda wildcards: SYNTHETIC_SPECS[wildcards.name],
        seed=config["seed"],
    script:
        "../scripts/synthetic_dataset.py"


rule synthetic_manifest:
    input:
        expand(f"{SYNTHETIC_DIR}/manifest/{{name}}.csv", name=sorted(SYNTHETIC_SPECS)),
    output:
        f"{SYNTHETIC_DIR}/manifest.csv",
    log:
        f"{LOGS}/synthetic/manifest.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/synthetic_manifest.py"


# Only the manifest: the dataset names depend on the config (the tiny config makes other
# datasets), while FINAL_OUTPUTS must be the same list for every config.
FINAL_OUTPUTS += [f"{SYNTHETIC_DIR}/manifest.csv"]
