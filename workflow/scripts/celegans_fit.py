"""Fit one method on one chunk of trials of one C. elegans dataset (rule celegans_fit)."""

from sinkhorn_em_repro.experiments.celegans import load_scene, run_celegans_chunk
from sinkhorn_em_repro.pipeline import snakemake_job, write_table

with snakemake_job(snakemake.log[0]):
    scene = load_scene(paths=list(snakemake.input), **snakemake.params.scene)
    print(f"{scene.dataset}: {scene.n_neurons} neurons, {scene.n_voxels} voxels")
    # The job's threads (config celegans.threads, capped by --cores) run the fits' passes;
    # the table is the same whatever their number.
    cfg = dict(snakemake.params.cfg)
    cfg["options"] = cfg["options"].replace(n_jobs=snakemake.threads)
    table = run_celegans_chunk(scene, **cfg)
    write_table(table, snakemake.output[0])
