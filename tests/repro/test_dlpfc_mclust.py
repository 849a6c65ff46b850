"""R's mclust baseline run for real: the tiny config with ``dlpfc: mclust: enabled``.

Needs ``Rscript`` with the mclust package (Debian: ``apt-get install r-base-core
r-cran-mclust``). Without it the run is skipped locally, but fails when ``CI=true`` (or
``SINKHORN_EM_REQUIRE_R=1``), so CI cannot pass by silently not testing the comparison.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from repro_support import DEFAULT_PROFILE, run_snakemake

pytestmark = pytest.mark.pipeline


def _r_required() -> bool:
    explicit = os.environ.get("SINKHORN_EM_REQUIRE_R")
    if explicit is not None:
        return explicit == "1"
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def rscript() -> str:
    """Path of Rscript with mclust; skips without (fails under CI, see the module docstring)."""
    found = shutil.which("Rscript")
    reason = None
    if found is None:
        reason = "Rscript is not on PATH (apt-get install r-base-core r-cran-mclust)"
    elif subprocess.run([found, "-e", "library(mclust)"], capture_output=True).returncode != 0:
        reason = "R has no mclust package (apt-get install r-cran-mclust)"
    if reason is not None:
        if _r_required():
            pytest.fail(f"R with mclust is required here (CI or SINKHORN_EM_REQUIRE_R=1) but {reason}")
        pytest.skip(reason)
    return found


def _override(tmp_path, **mclust) -> str:
    path = tmp_path / "mclust.yaml"
    path.write_text(yaml.safe_dump({"dlpfc": {"mclust": {"enabled": True, **mclust}}}))
    return str(path)


def test_missing_rscript_is_reported_before_any_job(pristine_copy, tiny_configfile_args, tmp_path):
    override = _override(tmp_path, rscript="no-such-Rscript-on-this-machine")
    rejected = run_snakemake(pristine_copy, "--dry-run", *tiny_configfile_args, override, timeout=300)
    assert rejected.returncode != 0, rejected.describe()
    assert "apt-get install r-base-core r-cran-mclust" in rejected.output, rejected.describe()
    assert "--sdm conda" in rejected.output, rejected.describe()


def test_tiny_run_with_mclust_puts_it_beside_our_tied_fits(
    rscript, make_repository_copy, tiny_configfile_args, tmp_path
):
    workdir = make_repository_copy("mclust")
    targets = ["results/tables/dlpfc.csv", "results/tables/mob.csv", "results/tables/dlpfc_summary.csv"]
    run = run_snakemake(
        workdir,
        *targets,  # before --configfile, which would swallow them as more config files
        "--workflow-profile",
        DEFAULT_PROFILE,
        "--cores",
        "2",
        *tiny_configfile_args,
        _override(tmp_path),
    )
    run.assert_ok()
    config = yaml.safe_load((workdir / "tests" / "config" / "config.yaml").read_text())["dlpfc"]
    for table_name, samples in (("dlpfc", config["slices"]), ("mob", ["mOB"])):
        table = pd.read_csv(workdir / "results" / "tables" / f"{table_name}.csv", dtype={"slice": str})
        for sample in samples:
            rows = table[table["slice"] == sample]
            # mclust's em() shares our k-means++ starts; Mclust's own start is the hc start.
            ours = rows[(rows["method"] == "oEM") & (rows["covariance_type"] == "tied") & (rows["start"] == "kmeans++")]
            from_start = rows[rows["method"] == "mclust"].sort_values("seed_index")
            own = rows[rows["method"] == "mclust_hc"]
            assert len(from_start) == config["n_seeds"] and len(own) == 1, rows[["method", "seed_index"]]
            assert set(from_start["covariance_type"]) == {"tied"} and set(own["weights"]) == {"none"}
            assert set(from_start["start"]) == {"kmeans++"} and set(own["start"]) == {"hc"}
            fitted = pd.concat([from_start, own])
            # A valid clustering scored on the annotated spots, a finite likelihood, a measured time.
            assert fitted["ari"].between(-0.5, 1.0).all() and fitted["ari"].notna().all()
            assert np.isfinite(fitted["mean_loglik"]).all() and (fitted["fit_seconds"] > 0).all()
            # scikit-learn's log-likelihood at mclust's parameters is R's own, to the stopping tolerance.
            np.testing.assert_allclose(fitted["mean_loglik"], fitted["r_mean_loglik"], rtol=5e-3)
            # mclust from our start shares its seeds with our fits (paired rows).
            assert sorted(from_start["seed"]) == sorted(ours["seed"])
    summary = pd.read_csv(workdir / "results" / "tables" / "dlpfc_summary.csv")
    assert {"mclust", "mclust_hc"} <= set(summary["method"])
