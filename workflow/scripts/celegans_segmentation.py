"""Voxel assignments of every method on one trial of one worm (rule celegans_segmentation)."""

from sinkhorn_em_repro.experiments.celegans import load_scene, segmentation_map
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    scene = load_scene(paths=list(snakemake.input), **snakemake.params.scene)
    write_table(segmentation_map(scene, **snakemake.params.cfg), snakemake.output[0])
