"""Draw one synthetic benchmark dataset; save its arrays (NPZ) and its manifest row."""

import numpy as np

from sinkhorn_em_repro.experiments.synthetic import build_benchmark
from sinkhorn_em_repro.pipeline import atomic_output, snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    benchmark = build_benchmark(snakemake.wildcards.name, snakemake.params.spec, snakemake.params.seed)
    with atomic_output(snakemake.output.data) as partial:
        np.savez_compressed(partial, **benchmark.arrays())
    write_table(benchmark.manifest, snakemake.output.manifest)
