# Rules of the sweeps family: initialisation sweep, epsilon sweep and annealing.
# Each sweep is split into chunks, one per (setting, dataset, block of `inits_per_job`
# initialisations), and `chunks_per_job` chunks make one job (one Python start-up for many
# fits) that Snakemake spreads over cores or cluster nodes; seeds come from what a chunk
# computes (sinkhorn_em_repro.experiments.sweeps), so the tables do not depend on --cores,
# job order, chunking or batching. `sweep_scale` multiplies the numbers of datasets and
# initialisations.
from sinkhorn_em_repro.experiments.sweeps import (
    batch_jobs,
    plan_epsilon_sweep,
    plan_init_sweep,
)

SWEEP_JOBS = {
    "init": batch_jobs(
        plan_init_sweep(section("init_sweep"), config["seed"], config["sweep_scale"]),
        section("init_sweep")["chunks_per_job"],
    ),
    "epsilon": batch_jobs(
        plan_epsilon_sweep(
            section("epsilon_sweep"), config["seed"], config["sweep_scale"]
        ),
        section("epsilon_sweep")["chunks_per_job"],
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
        runtime=lambda wildcards: 15
        * len(SWEEP_JOBS[wildcards.sweep][wildcards.job]["chunks"]),
    params:
        chunks=lambda wildcards: SWEEP_JOBS[wildcards.sweep][wildcards.job]["chunks"],
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


# Per start, every method's success and error side by side: the pairs of claim 5's paired test.
rule sweeps_init_pairs:
    input:
        runs=out.SWEEP_RUNS.format(sweep="init"),
    output:
        out.INIT_SWEEP_PAIRS.path,
    log:
        out.log("sweeps", "init_pairs"),
    script:
        "../scripts/sweeps_init_pairs.py"


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
