"""``celegans.threads``: the fit jobs' threads (``n_jobs`` of their fits) change no table.

The schema accepts a positive integer (default 1, today's single-threaded jobs) and rejects
anything else; a chunk fitted with 2 threads gives the rows of the 1-thread chunk, bit for
bit, except the wall time. The scene is large enough (K = 40 neurons, 16,000 voxels) for
the fits' passes to span several blocks, where the threads actually split the work.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from sinkhorn_em._balanced import sample_blocks
from sinkhorn_em_repro.experiments.celegans import atlas_scene, run_celegans_chunk
from sinkhorn_em_repro.fitting import FitOptions
from test_celegans import toy_atlas

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def celegans_validator():
    schema = yaml.safe_load(SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema["properties"]["celegans"])


def test_schema_accepts_threads_and_defaults_to_one():
    validator = celegans_validator()
    assert validator.schema["properties"]["threads"]["default"] == 1
    for threads in (1, 2, 16):
        validator.validate({"threads": threads})
    for bad in (0, -1, 1.5, "2", None):
        assert not validator.is_valid({"threads": bad}), bad


@pytest.mark.parametrize("method", ["sEM", "vEM"])
def test_a_chunk_on_two_threads_writes_the_same_rows(method):
    scene = atlas_scene(toy_atlas(K=40, spacing=4.0), dataset="toy", n_voxels=16_000)
    assert len(sample_blocks(scene.n_voxels // 2, 40)) > 1  # the training half spans several blocks
    kwargs = dict(method=method, trials=[0], base_seed=5, inits=["random"])
    options = FitOptions(covariance_type="spherical", tol=0.0, max_iter=3, sinkhorn_tol=1e-4)
    one = run_celegans_chunk(scene, **kwargs, options=options.replace(n_jobs=1))
    two = run_celegans_chunk(scene, **kwargs, options=options.replace(n_jobs=2))
    columns = [c for c in one.columns if c != "wall_seconds"]
    pd.testing.assert_frame_equal(one[columns], two[columns], check_exact=True)
    assert np.isfinite(one["train_loglik"]).all()
