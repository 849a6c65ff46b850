"""Voxel assignments of every method on one trial of one worm (rule celegans_segmentation)."""

from sinkhorn_em_repro.experiments.celegans import load_scene, segmentation_map
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
    write_table(segmentation_map(scene, **snakemake.params.cfg), snakemake.output[0])
