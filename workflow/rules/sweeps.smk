# Rules of the sweeps family (issue 5): initialisation sweep, epsilon sweep and annealing.
# Each sweep is split into many independent jobs, one per (setting, dataset, block of
# `inits_per_job` initialisations), that Snakemake spreads over cores or cluster nodes;
# seeds come from what a job computes (sinkhorn_em_repro.experiments.sweeps), so the tables do
# not depend on --cores, job order or chunking. `sweep_scale` multiplies the numbers of
# datasets and initialisations.
from sinkhorn_em_repro.experiments.sweeps import plan_epsilon_sweep, plan_init_sweep

SWEEP_JOBS = {
    "init": plan_init_sweep(
        section("init_sweep"), config["seed"], config["sweep_scale"]
    ),
    "epsilon": plan_epsilon_sweep(
        section("epsilon_sweep"), config["seed"], config["sweep_scale"]
    ),
}
SWEEP_CHUNKS = {
    sweep: [f"{RESULTS}/sweeps/{sweep}/runs/{job}.csv" for job in sorted(jobs)]
    for sweep, jobs in SWEEP_JOBS.items()
}


rule sweeps_chunk:
    output:
        f"{RESULTS}/sweeps/{{sweep}}/runs/{{job}}.csv",
    log:
        f"{LOGS}/sweeps/{{sweep}}/{{job}}.log",
    benchmark:
        f"{BENCHMARKS}/sweeps/{{sweep}}/{{job}}.tsv"
    wildcard_constraints:
        sweep="init|epsilon",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        cfg=lambda wildcards: SWEEP_JOBS[wildcards.sweep][wildcards.job],
    script:
        "../scripts/sweeps_chunk.py"


rule sweeps_aggregate:
    input:
        chunks=lambda wildcards: SWEEP_CHUNKS[wildcards.sweep],
    output:
        runs=f"{RESULTS}/sweeps/{{sweep}}/runs.csv",
        table=f"{TABLES}/{{sweep}}_sweep.csv",
    log:
        f"{LOGS}/sweeps/{{sweep}}_aggregate.log",
    wildcard_constraints:
        sweep="init|epsilon",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/sweeps_aggregate.py"


rule sweeps_init_figure:
    input:
        table=f"{TABLES}/init_sweep.csv",
    output:
        pdf=report(
            f"{FIGURES}/init_success.pdf",
            caption="../report/init_success.rst",
            category="Sweeps",
        ),
        png=f"{FIGURES}/init_success.png",
    log:
        f"{LOGS}/sweeps/init_success_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/sweeps_figure.py"


rule sweeps_epsilon_figure:
    input:
        table=f"{TABLES}/epsilon_sweep.csv",
    output:
        pdf=report(
            f"{FIGURES}/epsilon.pdf",
            caption="../report/epsilon.rst",
            category="Sweeps",
        ),
        png=f"{FIGURES}/epsilon.png",
    log:
        f"{LOGS}/sweeps/epsilon_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/sweeps_figure.py"


FINAL_OUTPUTS += [
    f"{FIGURES}/init_success.pdf",
    f"{FIGURES}/init_success.png",
    f"{TABLES}/init_sweep.csv",
    f"{FIGURES}/epsilon.pdf",
    f"{FIGURES}/epsilon.png",
    f"{TABLES}/epsilon_sweep.csv",
]
