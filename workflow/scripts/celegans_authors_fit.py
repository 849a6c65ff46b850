"""Fit one method with the authors' demo protocol on one chunk of trials (rule celegans_authors_fit)."""

from sinkhorn_em_repro.experiments.celegans import load_scene, run_authors_chunk
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    scene = load_scene(paths=list(snakemake.input), **snakemake.params.scene)
    print(f"{scene.dataset} (authors' protocol): {scene.n_neurons} neurons, {scene.n_voxels} voxels")
    write_table(run_authors_chunk(scene, **snakemake.params.cfg), snakemake.output[0])
