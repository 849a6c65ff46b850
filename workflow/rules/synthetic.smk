# Rules of the synthetic family: benchmark datasets with their seeds.
# One job per dataset writes results/synthetic/<name>.npz (data, labels, true parameters,
# seed) and a one-row manifest; one job gathers the rows into results/synthetic/manifest.csv.
# Dataset names encode every parameter (see sinkhorn_em_repro.experiments.synthetic.benchmark_specs).
from sinkhorn_em_repro.experiments.synthetic import benchmark_specs

SYNTHETIC_SPECS = benchmark_specs(section("synthetic"))


rule synthetic_dataset:
    output:
        data=out.SYNTHETIC_DATASET,
        manifest=out.SYNTHETIC_MANIFEST_ROW.path,
    log:
        out.log("synthetic", "{name}"),
    wildcard_constraints:
        name="[A-Za-z0-9_.-]+",
    params:
        spec=lambda wildcards: SYNTHETIC_SPECS[wildcards.name],
        seed=config["seed"],
    script:
        "../scripts/synthetic_dataset.py"


rule synthetic_manifest:
    input:
        expand(rules.synthetic_dataset.output.manifest, name=sorted(SYNTHETIC_SPECS)),
    output:
        out.SYNTHETIC_MANIFEST.path,
    log:
        out.log("synthetic", "manifest"),
    script:
        "../scripts/synthetic_manifest.py"


# Only the manifest: the dataset names depend on the config (the tiny config makes other
# datasets), while FINAL_OUTPUTS must be the same list for every config.
FINAL_OUTPUTS += out.final_outputs("synthetic")
