# Rules of the sweeps family: initialisation sweep, epsilon sweep and annealing.
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
    sweep: [out.SWEEP_CHUNK.format(sweep=sweep, job=job) for job in sorted(jobs)]
    for sweep, jobs in SWEEP_JOBS.items()
}


rule sweeps_chunk:
    output:
        out.SWEEP_CHUNK.path,
    log:
        out.log("sweeps", "{sweep}/{job}"),
    benchmark:
        out.benchmark("sweeps", "{sweep}/{job}")
    wildcard_constraints:
        sweep="init|epsilon",
    resources:
        runtime=15,
    params:
        cfg=lambda wildcards: SWEEP_JOBS[wildcards.sweep][wildcards.job],
    script:
        "../scripts/sweeps_chunk.py"


rule sweeps_aggregate:
    input:
        chunks=lambda wildcards: SWEEP_CHUNKS[wildcards.sweep],
    output:
        runs=out.SWEEP_RUNS.path,
        table=out.SWEEP_TABLE.path,
    log:
        out.log("sweeps", "{sweep}_aggregate"),
    wildcard_constraints:
        sweep="init|epsilon",
    resources:
        mem_mb=2000,
    script:
        "../scripts/sweeps_aggregate.py"


rule sweeps_init_figure:
    input:
        table=out.INIT_SWEEP.path,
    output:
        **figure_outputs("init_success"),
    log:
        out.log("sweeps", "init_success_figure"),
    script:
        "../scripts/sweeps_figure.py"


rule sweeps_epsilon_figure:
    input:
        table=out.EPSILON_SWEEP.path,
    output:
        **figure_outputs("epsilon"),
    log:
        out.log("sweeps", "epsilon_figure"),
    script:
        "../scripts/sweeps_figure.py"


FINAL_OUTPUTS += out.final_outputs("sweeps")
