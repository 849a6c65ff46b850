"""Glue used by the Snakemake scripts in ``workflow/scripts``.

Scripts stay thin: they read ``snakemake.params``/``snakemake.input``, call one
package function inside :func:`snakemake_job`, and write its result. The file side of the
experiments lives here: tables written and read with their declared column types
(:func:`write_table`, :func:`read_table`) and the timings of finished jobs
(:func:`read_job_timings`, for the report's costs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sinkhorn_em_repro.outputs import BENCHMARKS, LOGS, Table, pattern_regex, table_at

__all__ = ["atomic_output", "read_job_timings", "read_table", "snakemake_job", "write_table"]

_SINGLE_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# The last line snakemake_job writes to a log, read back by read_job_timings.
_WALL_TIME = re.compile(r"\[sinkhorn-em\] job wall time ([0-9.eE+-]+) s(?:, CPU ([0-9.eE+-]+) s)?")


@contextlib.contextmanager
def snakemake_job(log_path: str | os.PathLike | None):
    """Run a job body with stdout, stderr and warnings going to ``log_path``.

    BLAS is pinned to one thread: parallelism comes from Snakemake jobs, and a
    fixed thread count keeps floating-point reductions (hence tables) identical
    whatever ``--cores`` is.
    """
    from threadpoolctl import threadpool_limits

    for var in _SINGLE_THREAD_VARS:
        os.environ[var] = "1"
    if log_path is None:
        with threadpool_limits(1):
            yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        logging.basicConfig(stream=log, level=logging.INFO, force=True)
        logging.captureWarnings(True)
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            with threadpool_limits(1):
                yield
        except Exception:
            import traceback

            traceback.print_exc(file=log)
            log.flush()
            raise
        finally:
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            print(f"[sinkhorn-em] job wall time {wall:.2f} s, CPU {cpu:.2f} s", file=log)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; move it onto ``path`` only when the block succeeds.

    A job killed mid-write (Ctrl-C, a cluster's time limit, a power loss) then leaves
    either the complete previous state or no file at all, never a truncated table or
    figure that a rerun could mistake for a result. The temporary name keeps the
    suffix, so writers that infer the format from it (matplotlib, NumPy) still do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a result table as CSV with a stable float format (byte-reproducible), atomically."""
    with atomic_output(path) as partial:
        table.to_csv(partial, index=False, float_format="%.10g", lineterminator="\n")


def read_table(path: str | os.PathLike, table: Table | None = None) -> pd.DataFrame:
    """Read a table written by :func:`write_table` with the column types it was written with.

    The types are those declared for ``table`` (a :class:`sinkhorn_em_repro.outputs.Table`),
    by default the declared table ``path`` is a file of; labels such as the osmFISH
    weight setting ``"true"`` thus come back as strings, never as booleans. A path that
    matches no declaration is read with pandas' own type guessing.
    """
    declared = table if table is not None else table_at(path)
    return pd.read_csv(path) if declared is None else declared.read(path)


def _rule_of(path: str, patterns: Sequence[tuple[str, re.Pattern, int]]) -> str | None:
    # Several patterns may match; the one with most literal characters is the most specific.
    matches = [(literal, rule) for rule, regex, literal in patterns if regex.match(path)]
    return max(matches)[1] if matches else None


def read_job_timings(rule_files: Mapping[str, Mapping], root: str | os.PathLike = ".") -> pd.DataFrame:
    """Wall time of every job of a run, from its benchmark file or, failing that, its log.

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
        One row per timed job: ``rule``, ``source`` (``benchmark``: Snakemake's ``s``
        column, CPU time ``cpu`` and peak RSS ``rss``; ``log``: the wall and CPU time of the
        job body that :func:`snakemake_job` writes at the end of the log, without the
        interpreter's start-up), ``s``. Files found on disk are
        matched to rules by their patterns; files left by earlier runs with another config
        are included (``make clean-results`` removes them).
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
                found = _WALL_TIME.findall(path.read_text(errors="replace"))
                if found:
                    wall, cpu = found[-1]
                    records.append(
                        {"rule": rule, "source": source, "s": float(wall), "cpu": float(cpu or "nan"), "rss": np.nan}
                    )
    return pd.DataFrame(records, columns=["rule", "source", "s", "cpu", "rss"])
