r"""Provenance of a reproduction: the config hash, the software versions and the cost of every rule."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sinkhorn_em_repro.outputs import BENCHMARKS, LOGS, pattern_regex

__all__ = ["PROVENANCE_ONLY_KEYS", "config_hash", "result_config", "rule_costs", "software_versions"]


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


def _rule_of(path: str, patterns: Sequence[tuple[str, re.Pattern, int]]) -> str | None:
    # Several patterns may match; the one with most literal characters is the most specific.
    matches = [(literal, rule) for rule, regex, literal in patterns if regex.match(path)]
    return max(matches)[1] if matches else None


_LOG_WALL_TIME = re.compile(r"\[sinkhorn-em\] job wall time ([0-9.eE+-]+) s")


def rule_costs(rule_files: Mapping[str, Mapping], root: str | Path = ".") -> pd.DataFrame:
    """Wall time of every rule, from its benchmark files or, failing those, its logs.

    Parameters
    ----------
    rule_files : mapping
        Rule name -> ``{"benchmark": pattern or None, "log": [patterns]}`` (Snakemake path
        patterns relative to ``root``, as ``workflow.rules`` declares them).
    root : path
        Working directory of the run.

    Returns
    -------
    pandas.DataFrame
        One row per rule that ran and was measured: ``rule``, ``source`` (``benchmark``:
        Snakemake's ``s`` column, CPU time and peak RSS; ``log``: the wall time that
        :func:`sinkhorn_em_repro.pipeline.snakemake_job` prints at the end of the log), ``jobs``,
        ``total_s``, ``max_s``, ``cpu_s``, ``max_rss_mb``, sorted by decreasing total.
        Files found on disk are matched to rules by their patterns; files left by earlier
        runs with another config are included (``make clean-results`` removes them).
    """
    root = Path(root)
    benchmark_patterns, log_patterns = [], []
    for rule, files in rule_files.items():
        if files.get("benchmark"):
            pattern = str(files["benchmark"])
            benchmark_patterns.append((rule, pattern_regex(pattern), len(re.sub(r"\{[^{}]+\}", "", pattern))))
        for pattern in files.get("log") or []:
            log_patterns.append((rule, pattern_regex(str(pattern)), len(re.sub(r"\{[^{}]+\}", "", str(pattern)))))
    records = []
    benchmarked = {rule for rule, _, _ in benchmark_patterns}
    for directory, suffix, patterns, source in (
        (BENCHMARKS, "*.tsv", benchmark_patterns, "benchmark"),
        (LOGS, "*.log", log_patterns, "log"),
    ):
        base = root / directory
        if not base.is_dir():
            continue
        for path in sorted(base.rglob(suffix)):
            relative = path.relative_to(root).as_posix()
            rule = _rule_of(relative, patterns)
            if rule is None or (source == "log" and rule in benchmarked):
                continue
            if source == "benchmark":
                try:
                    bench = pd.read_csv(path, sep="\t")
                except (pd.errors.EmptyDataError, pd.errors.ParserError):
                    continue
                if "s" not in bench.columns or bench.empty:
                    continue
                records.append(
                    {
                        "rule": rule,
                        "source": source,
                        "s": float(bench["s"].iloc[-1]),
                        "cpu": float(
                            pd.to_numeric(bench.get("cpu_time", pd.Series([np.nan])), errors="coerce").iloc[-1]
                        ),
                        "rss": float(
                            pd.to_numeric(bench.get("max_rss", pd.Series([np.nan])), errors="coerce").iloc[-1]
                        ),
                    }
                )
            else:
                found = _LOG_WALL_TIME.findall(path.read_text(errors="replace"))
                if found:
                    records.append(
                        {"rule": rule, "source": source, "s": float(found[-1]), "cpu": np.nan, "rss": np.nan}
                    )
    columns = ["rule", "source", "jobs", "total_s", "max_s", "cpu_s", "max_rss_mb"]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    costs = (
        frame.groupby(["rule", "source"], sort=False)
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
