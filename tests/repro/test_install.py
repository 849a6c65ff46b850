"""The library installs on its own: a fresh virtual environment, ``pip install .``, a fit.

The core package ``sinkhorn_em`` must need only numpy, scipy, scikit-learn, pandas and numba;
the reproduction (``sinkhorn_em_repro``) runs from the checkout and is not in the
wheel. This test builds the project's wheel, checks that it holds ``sinkhorn_em``
alone, installs the project into a new venv without extras and checks the rest of
that promise: a model fits, ``sinkhorn_em_repro`` is not installed, and none of the
pipeline's dependencies was (so nothing in the core can be silently importing them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
import venv
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from repro_support import REPO_ROOT, copy_repository

pytestmark = pytest.mark.install

FIT_SCRIPT = textwrap.dedent(
    """
    import json, importlib.util
    import numpy as np
    import sinkhorn_em
    from sinkhorn_em import EOTGaussianMixture, eot_loss, nll
    from sinkhorn_em.synthetic import make_mixture

    sample = make_mixture(600, weights=[0.6, 0.4], dim=2, separation=4.0, rng=np.random.default_rng(0))
    model = EOTGaussianMixture(2, weights=sample.weights, random_state=0).fit(sample.X)
    try:
        import sinkhorn_em_repro  # noqa: F401
        repro_error = None
    except ImportError as error:
        repro_error = str(error)
    print(json.dumps({
        "converged": bool(model.converged_),
        "means_error": float(np.abs(np.sort(model.means_[:, 0]) - np.sort(sample.means[:, 0])).max()),
        "losses_finite": bool(np.isfinite(nll(sample.X, model.weights_, model.means_, model.covariances_))
                              and np.isfinite(model.eot_loss(sample.X))),
        "repro_error": repro_error,
        "sinkhorn_em_file": sinkhorn_em.__file__,
    }))
    """
)


def _core_requirements() -> set[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return {canonicalize_name(Requirement(text).name) for text in pyproject["project"]["dependencies"]}


def _clean_checkout(tmp_path):
    # Build from the files a clone holds: a build/ left in the work tree by an earlier
    # build would otherwise leak stale packages into the wheel.
    return copy_repository(tmp_path / "checkout")


def _isolated_environment() -> dict[str, str]:
    # Without PYTHONPATH: the venv must see what it installed, not this checkout's src/.
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def test_wheel_holds_the_library_alone(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--quiet"]
        + ["--wheel-dir", str(tmp_path / "wheels"), str(_clean_checkout(tmp_path))],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=_isolated_environment(),
    )
    assert build.returncode == 0, f"pip wheel . failed:\n{build.stdout}\n{build.stderr}"
    (wheel,) = (tmp_path / "wheels").glob("sinkhorn_em-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"sinkhorn_em"}, f"the wheel must hold only sinkhorn_em, it holds {sorted(top_level)}"
    shipped_modules = {name for name in names if name.startswith("sinkhorn_em/") and name.endswith(".py")}
    source_modules = {
        path.relative_to(REPO_ROOT / "src").as_posix() for path in (REPO_ROOT / "src" / "sinkhorn_em").rglob("*.py")
    }
    assert shipped_modules == source_modules, (
        f"modules missing from the wheel: {sorted(source_modules - shipped_modules)}"
    )


def test_core_installs_alone_and_fits_a_model(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", str(_clean_checkout(tmp_path))],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=_isolated_environment(),
    )
    assert install.returncode == 0, f"pip install . failed:\n{install.stdout}\n{install.stderr}"

    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        env=_isolated_environment(),
    )
    installed = {canonicalize_name(entry["name"]) for entry in json.loads(listing.stdout)}
    pipeline_only = {"snakemake", "matplotlib", "seaborn", "pot", "h5py", "openpyxl", "jsonschema", "pyyaml"}
    assert not installed & pipeline_only, f"the core install pulled pipeline packages: {installed & pipeline_only}"
    assert _core_requirements() <= installed

    fit = subprocess.run(
        [str(python), "-c", FIT_SCRIPT],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env=_isolated_environment(),
    )
    assert fit.returncode == 0, f"fitting with the core alone failed:\n{fit.stderr}"
    outcome = json.loads(fit.stdout.strip().splitlines()[-1])
    assert outcome["converged"] and outcome["losses_finite"]
    assert outcome["means_error"] < 0.3
    assert outcome["sinkhorn_em_file"].startswith(str(env_dir)), outcome["sinkhorn_em_file"]
    # The reproduction package is not installed at all (it runs from the checkout).
    assert outcome["repro_error"] is not None and "No module named 'sinkhorn_em_repro'" in outcome["repro_error"]


def test_reproduction_package_is_beside_the_core_not_inside_it():
    core = REPO_ROOT / "src" / "sinkhorn_em"
    for name in ("experiments", "plotting", "datasets", "pipeline.py", "symmetric.py", "identities.py"):
        assert not (core / name).exists(), f"{name} belongs to sinkhorn_em_repro, not the library"
    imports = subprocess.run(
        [sys.executable, "-c", "import json, sys, sinkhorn_em; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {name.split(".")[0] for name in json.loads(imports.stdout)}
    assert not loaded & {"snakemake", "matplotlib", "ot", "h5py", "sinkhorn_em_repro"}, loaded
