"""Glue used by the Snakemake scripts in ``workflow/scripts``.

Scripts stay thin: they read ``snakemake.params``/``snakemake.input``, call one
package function inside :func:`snakemake_job`, and write its result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import pandas as pd

from sinkhorn_em_repro.outputs import Table, table_at

__all__ = ["read_table", "snakemake_job", "write_table"]

_SINGLE_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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
        start = time.perf_counter()
        try:
            with threadpool_limits(1):
                yield
        except Exception:
            import traceback

            traceback.print_exc(file=log)
            log.flush()
            raise
        finally:
            print(f"[sinkhorn-em] job wall time {time.perf_counter() - start:.2f} s", file=log)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a result table as CSV with a stable float format (byte-reproducible)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def read_table(path: str | os.PathLike, table: Table | None = None) -> pd.DataFrame:
    """Read a table written by :func:`write_table` with the column types it was written with.

    The types are those declared for ``table`` (a :class:`sinkhorn_em_repro.outputs.Table`),
    by default the declared table ``path`` is a file of; labels such as the osmFISH
    weight setting ``"true"`` thus come back as strings, never as booleans. A path that
    matches no declaration is read with pandas' own type guessing.
    """
    declared = table if table is not None else table_at(path)
    return pd.read_csv(path) if declared is None else declared.read(path)
