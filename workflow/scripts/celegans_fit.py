"""Fit one method on one chunk of trials of one C. elegans dataset (rule celegans_fit)."""

from sinkhorn_em_repro.experiments.celegans import load_scene, run_celegans_chunk
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    scene = load_scene(paths=list(snakemake.input), **snakemake.params.scene)
    print(f"{scene.dataset}: {scene.n_neurons} neurons, {scene.n_voxels} voxels")
    write_table(run_celegans_chunk(scene, **snakemake.params.cfg), snakemake.output[0])
