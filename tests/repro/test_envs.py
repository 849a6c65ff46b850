"""The conda environment files in envs/ must describe the same software as pyproject.toml.

Users who run ``snakemake --sdm conda`` get their packages from envs/*.yaml, everyone
else from pyproject.toml: the two must not drift. A Python environment lists exactly the
project's runtime dependencies and build requirements, with the same version
bounds, plus ``python`` (bounded by ``requires-python``) and ``pip`` (which installs
the package itself in the post-deploy script). The R environment of the mclust baseline
(``envs/mclust.yaml``) lists R and mclust, and the rule running the R script uses it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((REPO_ROOT / "envs").glob("*.yaml"))
# Environments of rules that run R scripts: no Python package of pyproject belongs there.
R_ENV_FILES = {"mclust.yaml": {"r-base", "r-mclust"}}
PYTHON_ENV_FILES = [path for path in ENV_FILES if path.name not in R_ENV_FILES]
# Packages an environment needs beyond pyproject's lists, and why.
TOOLING = {"pip": "installs the package (post-deploy script)"}


def expected_packages() -> dict[str, SpecifierSet]:
    """Canonical name -> version bounds that every environment must list."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    requirements = [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["reproduce"],
        *pyproject["build-system"]["requires"],
    ]
    expected = {}
    for text in requirements:
        requirement = Requirement(text)
        expected[canonicalize_name(requirement.name)] = requirement.specifier
    expected["python"] = SpecifierSet(pyproject["project"]["requires-python"])
    expected.update({name: SpecifierSet() for name in TOOLING})
    return expected


def conda_packages(env_file: Path) -> dict[str, SpecifierSet]:
    """Canonical name -> version bounds of the conda dependencies of an environment file.

    Only the PEP 440 subset of conda's match-spec syntax is accepted (``name``,
    ``name>=1.2``, ``name>=1,<2``); anything else fails, so it is noticed.
    """
    environment = yaml.safe_load(env_file.read_text())
    packages = {}
    for entry in environment["dependencies"]:
        if not isinstance(entry, str):
            raise ValueError(
                f"{env_file.name}: nested entry {entry!r} (e.g. a pip: section) is not "
                "supported; list conda packages only"
            )
        requirement = Requirement(re.sub(r"\s+", "", entry))
        name = canonicalize_name(requirement.name)
        if name in packages:
            raise ValueError(f"{env_file.name}: {name} is listed twice")
        packages[name] = requirement.specifier
    return packages


def test_there_is_an_environment_file():
    assert ENV_FILES, "envs/ holds no *.yaml conda environment"


@pytest.mark.parametrize("env_file", PYTHON_ENV_FILES, ids=lambda path: path.name)
def test_environment_lists_exactly_the_pyproject_packages(env_file):
    listed = conda_packages(env_file)
    expected = expected_packages()
    assert sorted(set(expected) - set(listed)) == [], f"missing from {env_file.name}"
    assert sorted(set(listed) - set(expected)) == [], f"in {env_file.name} but not in pyproject.toml"
    different = {name: (str(listed[name]), str(expected[name])) for name in expected if listed[name] != expected[name]}
    assert different == {}, f"version bounds differ ({env_file.name}, pyproject.toml)"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_environment_uses_conda_forge(env_file):
    channels = yaml.safe_load(env_file.read_text())["channels"]
    # conda-forge first: it has every package; bioconda only adds snakemake.
    assert channels[0] == "conda-forge"


def test_rules_point_at_an_existing_environment_with_its_post_deploy_script():
    common = (REPO_ROOT / "workflow" / "rules" / "common.smk").read_text()
    match = re.search(r'^CONDA_ENV = "(?P<path>[^"]+)"$', common, flags=re.MULTILINE)
    assert match, "common.smk defines no CONDA_ENV"
    # conda: paths are relative to the rule file, and the rule files live in workflow/rules.
    env_file = (REPO_ROOT / "workflow" / "rules" / match["path"]).resolve()
    assert env_file in [path.resolve() for path in ENV_FILES]
    post_deploy = env_file.with_name(env_file.name.replace(".yaml", ".post-deploy.sh"))
    assert post_deploy.is_file(), f"{post_deploy} is missing: jobs could not import sinkhorn_em"


@pytest.mark.parametrize("name", sorted(R_ENV_FILES))
def test_r_environment_lists_r_and_its_packages_and_its_rule_uses_it(name):
    env_file = REPO_ROOT / "envs" / name
    assert env_file in ENV_FILES, f"envs/{name} is missing"
    assert set(conda_packages(env_file)) == R_ENV_FILES[name]
    rules = (REPO_ROOT / "workflow" / "rules" / "dlpfc.smk").read_text()
    assert f'"../../envs/{name}"' in rules, f"no rule runs in envs/{name}"
