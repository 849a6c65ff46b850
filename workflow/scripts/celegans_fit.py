"""Fit one method on one chunk of trials of one C. elegans dataset (rule celegans_fit)."""

from sinkhorn_em_repro.experiments.celegans import load_scene, run_celegans_chunk
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    scene_args = snakemake.params.scene
    scene = load_scene(
        scene_args["dataset"],
        scene_args["spec"],
        list(snakemake.input),
        min_position=scene_args["min_position"],
        sha256=scene_args["sha256"],
    )
    print(f"{scene.dataset}: {scene.n_neurons} neurons, {scene.n_voxels} voxels")
    write_table(run_celegans_chunk(scene, **snakemake.params.cfg), snakemake.output[0])
