"""An interrupted run resumes: hard-kill `make reproduce` mid-run, rerun the same command.

The kill is the harshest kind (SIGKILL to Make, Snakemake and every job at once, as a
power loss or an out-of-memory kill would do): nothing gets to clean up. Afterwards

* no partial table or figure may exist: every CSV, PDF, PNG and NPZ under ``results/``
  is complete (tables equal those of an uninterrupted run, apart from wall-time columns);
* the same command completes, resuming instead of starting over (it runs fewer jobs than
  a fresh run), and leaves no temporary file behind;
* its tables equal those of an uninterrupted run, apart from the columns ending in ``seconds``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from repro_support import RUN_TIMEOUT_SECONDS, TINY_CONFIG, _subprocess_environment, copy_repository
from test_pipeline import _table_without_wall_time

pytestmark = pytest.mark.pipeline

PROGRESS = re.compile(r"(\d+) of (\d+) steps \((\d+)%\) done")
# Kill once this share of the jobs has finished: mid-run, with jobs still running.
KILL_AT_PERCENT = 35


def _reproduce_command(mirror_dir: Path | None) -> list[str]:
    venv = Path(sys.executable).parent.parent
    command = [
        "make",
        "--no-print-directory",
        # Never reinstall: the copy must run with the interpreter under test.
        "-o",
        str(venv / ".installed"),
        "reproduce",
        f"VENV={venv}",
        "CORES=2",
        f"SNAKEMAKE_ARGS=--configfile {TINY_CONFIG}",
    ]
    if mirror_dir is not None:
        command.append(f"MIRROR={mirror_dir}")
    return command


def _kill_everything_in(workdir: Path) -> None:
    """SIGKILL any process still working in ``workdir`` (jobs that escaped the process group)."""
    import psutil

    for process in psutil.process_iter(["pid", "cwd"]):
        cwd = process.info["cwd"]
        if cwd and Path(cwd).is_relative_to(workdir) and process.info["pid"] != os.getpid():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


def _start_and_kill_midway(workdir: Path, command: list[str]) -> tuple[int, int, str]:
    """Run ``command`` in ``workdir`` until KILL_AT_PERCENT of its jobs are done, then SIGKILL it all."""
    process = subprocess.Popen(
        command,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_subprocess_environment(workdir),
        start_new_session=True,
    )
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    lines, done, total = [], 0, 0
    for line in process.stdout:
        lines.append(line)
        match = PROGRESS.search(line)
        if match:
            done, total, percent = (int(group) for group in match.groups())
            if percent >= KILL_AT_PERCENT:
                break
        if time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    _kill_everything_in(workdir)
    return done, total, "".join(lines)


def _assert_complete(path: Path, reference: Path) -> None:
    suffix = path.suffix
    if suffix == ".csv":
        assert reference.is_file(), f"{path} has no counterpart in the uninterrupted run"
        assert _table_without_wall_time(path) == _table_without_wall_time(reference), f"{path} is partial or differs"
    elif suffix == ".pdf":
        assert path.read_bytes().rstrip().endswith(b"%%EOF"), f"{path} is a truncated PDF"
    elif suffix == ".png":
        assert path.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{path} is a truncated PNG"
    elif suffix == ".npz":
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None, f"{path} is a damaged archive"


def test_hard_kill_then_the_same_command_resumes(make_repository_copy, tiny_run_cores2, mirror_dir):
    workdir = make_repository_copy("interrupted")
    reference = tiny_run_cores2.workdir / "results"
    command = _reproduce_command(mirror_dir)

    done, total, output = _start_and_kill_midway(workdir, command)
    assert 0 < done < total, f"the run was not killed mid-way ({done} of {total} jobs):\n{output[-3000:]}"
    assert (workdir / ".snakemake" / "locks").is_dir() and any((workdir / ".snakemake" / "locks").iterdir()), (
        "the hard kill left no lock: this test no longer exercises the stale-lock recovery"
    )

    results = workdir / "results"
    for path in sorted(p for p in results.rglob("*") if p.is_file() and not p.name.startswith(".")):
        _assert_complete(path, reference / path.relative_to(results))

    rerun = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        env=_subprocess_environment(workdir),
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert rerun.returncode == 0, f"the rerun failed:\n{rerun.stdout[-4000:]}\n{rerun.stderr[-4000:]}"
    assert "interrupted Snakemake run" in rerun.stdout
    rerun_totals = [int(match.group(2)) for match in PROGRESS.finditer(rerun.stdout + rerun.stderr)]
    assert rerun_totals and max(rerun_totals) < total, "the rerun started over instead of resuming"

    leftovers = [str(p) for p in results.rglob(".*partial*")]
    assert not leftovers, f"temporary files survived the rerun: {leftovers}"
    tables = sorted(p.relative_to(results) for p in (results / "tables").glob("*.csv"))
    assert tables == sorted(p.relative_to(reference) for p in (reference / "tables").glob("*.csv"))
    for name in tables:
        assert _table_without_wall_time(results / name) == _table_without_wall_time(reference / name), name


def test_the_reproduce_command_never_reinstalls_the_venv_under_test(tmp_path):
    # The copy's pyproject.toml is newer than the venv's install stamp (as in every repository
    # copy of a checkout whose venv was installed earlier): with `-o` the whole command, the
    # report included, must use the venv as it is. A sub-make for the report once ignored
    # `-o` and ran `pip install --editable` from the copy into the venv under test.
    copy = copy_repository(tmp_path / "copy")
    (copy / "pyproject.toml").touch()
    venv = Path(sys.executable).parent.parent
    dry_run = subprocess.run(
        ["make", "-n", *_reproduce_command(None)[1:]],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
        env=_subprocess_environment(copy),
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert "snakemake --report" in dry_run.stdout, dry_run.stdout
    assert "pip install" not in dry_run.stdout, dry_run.stdout
    assert str(venv) in dry_run.stdout
