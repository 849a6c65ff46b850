"""Glue used by the Snakemake scripts in ``workflow/scripts``.

Scripts stay thin: they read ``snakemake.params``/``snakemake.input``, call one
package function inside :func:`snakemake_job`, and write its result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

__all__ = ["atomic_output", "read_table", "snakemake_job", "write_table"]

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


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_table`."""
    return pd.read_csv(path, keep_default_na=True)


def _stderr_is_tty() -> bool:  # pragma: no cover - convenience for interactive use
    return sys.stderr.isatty()
