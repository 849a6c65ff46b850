r"""Provenance of a reproduction: the config hash, the software versions and the cost of every rule."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = [
    "PROVENANCE_ONLY_KEYS",
    "config_hash",
    "family_costs",
    "result_config",
    "rule_costs",
    "rule_family",
    "software_versions",
]


#: Config keys that say where the (checksummed) input bytes come from, not what is computed.
PROVENANCE_ONLY_KEYS = (("datasets", "mirror"), ("datasets", "timeout"))


def result_config(config: Mapping, ignore: Sequence[Sequence[str]] = PROVENANCE_ONLY_KEYS) -> dict:
    """``config`` without the keys listed in ``ignore`` (paths of nested keys).

    By default the dataset mirror and download timeout go: they change where the
    checksummed input files come from, never a result.
    """
    ignored = {tuple(path) for path in ignore}

    def strip(node, path):
        if not isinstance(node, Mapping):
            return node
        return {key: strip(value, (*path, key)) for key, value in node.items() if (*path, key) not in ignored}

    return strip(config, ())


def config_hash(config: Mapping, ignore: Sequence[Sequence[str]] = PROVENANCE_ONLY_KEYS) -> str:
    """sha256 of the canonical JSON dump (keys sorted, no whitespace) of :func:`result_config`.

    The same reproduction thus gets the same hash on every machine, whichever mirror it
    read the datasets from.
    """
    canonical = json.dumps(
        result_config(config, ignore), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


VERSIONED_PACKAGES = ("sinkhorn-em", "numpy", "scipy", "scikit-learn", "POT", "pandas", "matplotlib", "snakemake")


def software_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Python and package versions of the running interpreter ("not installed" if absent)."""
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


#: Rules whose name does not start with their family's name.
_RULE_FAMILY = {"fetch_dataset": "datasets", "fetch_datasets": "datasets"}


def rule_family(rule: str) -> str:
    """The family of a rule: the prefix of its name (``celegans_fit`` -> ``celegans``), datasets for the fetch rules."""
    return _RULE_FAMILY.get(rule, rule.split("_", 1)[0])


def family_costs(costs: pd.DataFrame) -> pd.DataFrame:
    """Cost of every family from :func:`rule_costs`: jobs, wall time and CPU time summed over its rules.

    ``cpu_s`` sums what the ``benchmark:`` files measured (NaN for a family without any);
    ``timed_by`` says whether the wall time comes from benchmark files, job logs or both.
    """
    columns = ["family", "jobs", "total_s", "cpu_s", "max_rss_mb", "timed_by"]
    if costs.empty:
        return pd.DataFrame(columns=columns)
    table = costs.assign(family=costs["rule"].map(rule_family))
    summary = (
        table.groupby("family", sort=False)
        .agg(
            jobs=("jobs", "sum"),
            total_s=("total_s", "sum"),
            cpu_s=("cpu_s", lambda c: c.sum(min_count=1)),
            max_rss_mb=("max_rss_mb", "max"),
            timed_by=("source", lambda s: " + ".join(sorted(set(s)))),
        )
        .reset_index()
    )
    return summary.sort_values(["total_s", "family"], ascending=[False, True], kind="stable").reset_index(drop=True)[
        columns
    ]


def rule_costs(timings: pd.DataFrame) -> pd.DataFrame:
    """Wall time of every rule, summed over its jobs.

    Parameters
    ----------
    timings : pandas.DataFrame
        One row per timed job (:func:`sinkhorn_em_repro.pipeline.read_job_timings`): ``rule``,
        ``source`` (``benchmark`` or ``log``), ``s`` (wall time), ``cpu`` and ``rss``.

    Returns
    -------
    pandas.DataFrame
        One row per (rule, source): ``rule``, ``source``, ``jobs``, ``total_s``, ``max_s``,
        ``cpu_s``, ``max_rss_mb``, sorted by decreasing total.
    """
    columns = ["rule", "source", "jobs", "total_s", "max_s", "cpu_s", "max_rss_mb"]
    if timings.empty:
        return pd.DataFrame(columns=columns)
    costs = (
        timings.groupby(["rule", "source"], sort=False)
        .agg(
            jobs=("s", "size"),
            total_s=("s", "sum"),
            max_s=("s", "max"),
            cpu_s=("cpu", lambda c: c.sum(min_count=1)),
            max_rss_mb=("rss", "max"),
        )
        .reset_index()
    )
    return costs.sort_values(["total_s", "rule"], ascending=[False, True], kind="stable").reset_index(drop=True)[
        columns
    ]
