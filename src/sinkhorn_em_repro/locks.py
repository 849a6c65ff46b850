"""Recover from a hard interruption: remove Snakemake's lock when no Snakemake process owns it.

Snakemake locks its working directory while it runs and releases the lock when it
stops, even on Ctrl-C or SIGTERM. A hard kill (SIGKILL, a power loss, an out-of-memory
kill of the main process) leaves the lock behind, and the next run refuses to start
until ``snakemake --unlock``. ``make reproduce`` runs ``python -m sinkhorn_em_repro.locks``
first: when ``.snakemake/locks`` holds lock files and no Snakemake process on this
machine runs in the directory, the lock is stale and is removed, so rerunning the same
command resumes the interrupted run (``rerun-incomplete`` in the default profile redoes
the jobs that were cut short). When a Snakemake process does run there, nothing is
touched and Snakemake's own error explains the situation. The temporary files of jobs
killed mid-write (``results/**/.*.partial*``, see :func:`sinkhorn_em_repro.pipeline.atomic_output`)
are removed with a stale lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["running_snakemake_processes", "stale_lock_files", "unlock_if_stale"]


def stale_lock_files(workdir: str | os.PathLike = ".") -> list[Path]:
    """Lock files Snakemake left in ``workdir`` (stale or not)."""
    locks = Path(workdir) / ".snakemake" / "locks"
    return sorted(locks.glob("*.lock")) if locks.is_dir() else []


def running_snakemake_processes(workdir: str | os.PathLike = ".") -> list[int]:
    """PIDs of the Snakemake processes (other than this one) whose working directory is ``workdir``."""
    import psutil

    target = Path(workdir).resolve()
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = process.info
        if info["pid"] == os.getpid() or not info["cmdline"] or info["cwd"] is None:
            continue
        command = " ".join(info["cmdline"])
        if "snakemake" in command and "sinkhorn_em_repro.locks" not in command and Path(info["cwd"]) == target:
            found.append(info["pid"])
    return found


def unlock_if_stale(workdir: str | os.PathLike = ".", snakemake_args: list[str] | None = None) -> bool:
    """Run ``snakemake --unlock`` in ``workdir`` when its lock is stale; return whether it did."""
    if not stale_lock_files(workdir):
        return False
    owners = running_snakemake_processes(workdir)
    if owners:
        print(f"sinkhorn-em: Snakemake is running in {workdir} (PIDs {owners}); leaving its lock alone.")
        return False
    print("sinkhorn-em: removing the lock left by an interrupted Snakemake run (no Snakemake process is running here).")
    # Temporary files of jobs killed mid-write (see pipeline.atomic_output) go with it.
    for partial in (Path(workdir) / "results").rglob(".*.partial*"):
        partial.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--unlock", *(snakemake_args or [])],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return True


if __name__ == "__main__":
    unlock_if_stale(".", sys.argv[1:])
