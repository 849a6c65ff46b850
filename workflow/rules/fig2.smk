# Rules of the fig2 family: Figure 2 of Mena et al. (2020).
# The alpha* grid is split into `n_chunks` jobs (alpha values interleaved, so every job
# gets easy and hard settings alike); each job runs every method, theta0 and repetition
# of its alphas, vectorised. Noise vectors are seeded by repetition only, so the table
# does not depend on the chunking.
from sinkhorn_em_repro.experiments.fig2 import grid as fig2_grid

FIG2 = section("fig2")
FIG2_ALPHAS = fig2_grid(FIG2["alpha_grid"])
FIG2_CHUNKS = min(FIG2["n_chunks"], len(FIG2_ALPHAS))
FIG2_RUN_KEYS = (
    "n_samples",
    "n_reps",
    "methods",
    "vem_iterations",
    "oem_iterations",
    "sem_iterations",
    "estep",
    "sinkhorn_sweeps",
    "error_iteration",
    "converge_factor",
)


FIG2_CHUNK_PARAMS = {
    str(chunk): dict(
        seed=config["seed"],
        alphas=[float(a) for a in FIG2_ALPHAS[chunk::FIG2_CHUNKS]],
        theta0s=dict(FIG2["theta0_grid"]),
        **{key: FIG2[key] for key in FIG2_RUN_KEYS},
    )
    for chunk in range(FIG2_CHUNKS)
}


rule fig2_chunk:
    output:
        out.FIG2_CHUNK.path,
    log:
        out.log("fig2", "chunk{chunk}"),
    benchmark:
        out.benchmark("fig2", "chunk{chunk}")
    wildcard_constraints:
        chunk=r"\d+",
    resources:
        runtime=30,
    params:
        cfg=lambda wildcards: FIG2_CHUNK_PARAMS[wildcards.chunk],
    script:
        "../scripts/fig2_chunk.py"


rule fig2_aggregate:
    input:
        chunks=expand(rules.fig2_chunk.output[0], chunk=range(FIG2_CHUNKS)),
    output:
        table=out.FIG2_RUNS.path,
    log:
        out.log("fig2", "aggregate"),
    script:
        "../scripts/fig2_aggregate.py"


rule fig2_estep_check:
    output:
        table=out.FIG2_ESTEP_CHECK.path,
    log:
        out.log("fig2", "estep_check"),
    benchmark:
        out.benchmark("fig2", "estep_check")
    resources:
        runtime=30,
    params:
        cfg=dict(
            seed=config["seed"],
            n_samples=FIG2["n_samples"],
            sem_iterations=FIG2["sem_iterations"],
            sinkhorn_sweeps=FIG2["sinkhorn_sweeps"],
            **FIG2["estep_check"],
        ),
    script:
        "../scripts/fig2_estep_check.py"


rule fig2_figure:
    input:
        table=rules.fig2_aggregate.output.table,
    output:
        **figure_outputs("fig2"),
    log:
        out.log("fig2", "figure"),
    params:
        cfg={
            key: FIG2[key]
            for key in (
                "panel_theta0",
                "panel_alphas",
                "error_iteration",
                "converge_factor",
            )
        },
    script:
        "../scripts/fig2_figure.py"


FINAL_OUTPUTS += out.final_outputs("fig2")
