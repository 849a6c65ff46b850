"""End-to-end tests of Slurm execution against a real (local, single-node) Slurm.

Start the cluster first, as root on Debian/Ubuntu (CI's .ci/run does this)::

    bash tests/cluster/local-slurm.sh start     # installs slurm + munge if needed, ~10 s
    pytest -m cluster
    bash tests/cluster/local-slurm.sh stop

Without ``sbatch`` on PATH, or with no node accepting jobs, every test here is
skipped with the reason. Set ``SINKHORN_EM_REQUIRE_SLURM=1`` to turn that skip into
a failure; it is on by default when ``CI=true`` (set ``SINKHORN_EM_REQUIRE_SLURM=0``
to opt out), so CI cannot pass by silently not testing the cluster.

Every run goes through ``tests/cluster/profile`` (executor slurm, ``squeue`` status
polling since the test cluster has no accounting) and is killed with SIGKILL on
timeout: when status polling breaks, Snakemake can wait forever and ignore
SIGTERM. Slurm jobs a killed run leaves behind are cancelled.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from repro_support import DEFAULT_PROFILE, REPO_ROOT, run_snakemake

# Under pytest-xdist every test here runs on one worker, one after another: the toy jobs must
# not queue behind the tiny run's group jobs on the 2-CPU node (the failing job has a
# reporting deadline). As the largest group it is also handed out first, so the long Slurm
# run starts at once and overlaps with the rest of the suite.
pytestmark = pytest.mark.xdist_group("slurm")

# Tests that submit jobs to Slurm; the profile check at the end needs no cluster.

CLUSTER_SCRIPT = "tests/cluster/local-slurm.sh"
CLUSTER_PROFILE = REPO_ROOT / "workflow" / "profiles" / "slurm"
TEST_PROFILE = REPO_ROOT / "tests" / "cluster" / "profile"
TOY_SNAKEFILE = REPO_ROOT / "tests" / "cluster" / "toy" / "Snakefile"
WALL_TIME_SUFFIX = "seconds"
# Two chained toy jobs take ~30 s on an idle 2-core machine (mostly the plugin's
# status-poll back-off); these limits only stop a hung run.
TOY_TIMEOUT_SECONDS = 240.0
TINY_TIMEOUT_SECONDS = float(os.environ.get("SINKHORN_EM_SLURM_TINY_TIMEOUT", 20 * 60))
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")
ACCEPTING_STATES = {"idle", "mix", "alloc", "comp"}


def _slurm_required() -> bool:
    explicit = os.environ.get("SINKHORN_EM_REQUIRE_SLURM")
    if explicit is not None:
        return explicit == "1"
    return os.environ.get("CI", "").lower() == "true"


def _skip_or_fail(reason: str) -> None:
    if _slurm_required():
        pytest.fail(f"Slurm is required here (CI or SINKHORN_EM_REQUIRE_SLURM=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The partition states of the running Slurm; skips (or fails, see module doc) without one.

    Request it before any expensive fixture so that a skip costs nothing.
    """
    hint = f"start one with `bash {CLUSTER_SCRIPT} start` (root, Debian/Ubuntu)"
    if shutil.which("sbatch") is None:
        _skip_or_fail(f"sbatch is not on PATH, so there is no Slurm to test against; {hint}")
    try:
        # `scontrol ping` answers at once; sinfo retries ~10 s when no controller runs.
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
        if ping.returncode != 0:
            answer = ((ping.stdout + ping.stderr).strip().splitlines() or ["no output"])[0]
            _skip_or_fail(f"no Slurm controller answers (scontrol ping: {answer}); {hint}")
        states = subprocess.run(
            ["sinfo", "--noheader", "--format=%t"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        _skip_or_fail(f"scontrol/sinfo did not answer ({error}); {hint}")
    accepting = set(states.stdout.split()) & ACCEPTING_STATES
    if states.returncode != 0 or not accepting:
        _skip_or_fail(
            f"Slurm is installed but no node accepts jobs (sinfo exit {states.returncode}: "
            f"{(states.stdout + states.stderr).strip()!r}); {hint}"
        )
    return states.stdout


def _slurm_jobs_started_in(workdir: Path) -> dict[str, str]:
    """Job id -> state of every job Slurm still knows whose working directory is ``workdir``."""
    listing = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T|%Z"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    jobs = {}
    for line in listing.stdout.splitlines():
        job_id, state, directory = line.split("|", 2)
        if Path(directory).resolve() == workdir.resolve():
            jobs[job_id] = state
    return jobs


@contextlib.contextmanager
def _cancel_leftover_jobs(workdir: Path):
    """Cancel the jobs started from ``workdir`` that are unfinished when the block exits.

    A Snakemake run killed on timeout leaves its Slurm jobs running; on a 2-core
    machine they would slow down every later test.
    """
    try:
        yield
    finally:
        unfinished = [
            job_id
            for job_id, state in _slurm_jobs_started_in(workdir).items()
            if state in {"PENDING", "RUNNING", "CONFIGURING", "SUSPENDED"}
        ]
        if unfinished:
            subprocess.run(["scancel", *unfinished], check=False, timeout=20)


def _run_through_slurm(workdir: Path, *args: str, timeout: float):
    with _cancel_leftover_jobs(workdir):
        return run_snakemake(workdir, "--profile", str(TEST_PROFILE), *args, timeout=timeout)


def _submitted_job_ids(output: str) -> list[str]:
    return SUBMITTED.findall(output)


def _slurm_cpus_of(job_ids: list[str]) -> dict[str, int]:
    """Job id -> CPUs Slurm allocated to it (finished jobs stay listed for MinJobAge)."""
    listing = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "--format=%i|%C"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    cpus = dict(line.split("|", 1) for line in listing.stdout.split())
    return {job_id: int(cpus[job_id]) if job_id in cpus else -1 for job_id in job_ids}


@pytest.mark.cluster
@pytest.mark.pipeline
def test_toy_workflow_runs_its_jobs_through_slurm(slurm_cluster, tmp_path):
    run = _run_through_slurm(tmp_path, "--snakefile", str(TOY_SNAKEFILE), timeout=TOY_TIMEOUT_SECONDS)
    print(f"\ntoy two-job workflow through Slurm: {run.seconds:.1f} s")
    run.assert_ok()

    submitted = _submitted_job_ids(run.output)
    assert len(submitted) == 2, f"expected two Slurm submissions: {run.describe()}"
    # Each job wrote the SLURM_JOB_ID it saw: equal to what Snakemake submitted
    # only if the job really ran inside that Slurm job, not on the submitting host.
    numbers = (tmp_path / "toy" / "numbers.txt").read_text().splitlines()
    summary = (tmp_path / "toy" / "summary.txt").read_text().splitlines()
    ran_in = [numbers[0], summary[0]]
    assert ran_in == [f"job={job_id}" for job_id in submitted]
    assert summary[1] == f"sum={sum(int(n) for n in numbers[1:])}"
    states = _slurm_jobs_started_in(tmp_path)
    assert {states.get(job_id) for job_id in submitted} == {"COMPLETED"}, states


@pytest.mark.cluster
@pytest.mark.pipeline
def test_failing_job_is_reported_failed_not_hung(slurm_cluster, tmp_path):
    run = _run_through_slurm(tmp_path, "--snakefile", str(TOY_SNAKEFILE), "fail", timeout=TOY_TIMEOUT_SECONDS)
    print(f"\nfailing toy job through Slurm reported in {run.seconds:.1f} s")
    assert run.returncode != 0, f"a job that exits 1 was not reported: {run.describe()}"
    # Not hung: the run ended on its own before TOY_TIMEOUT_SECONDS (run_snakemake fails the test
    # on a timeout), because the plugin saw Slurm's FAILED state. No wall-time bound below the
    # timeout: ~40 s on an idle machine, 165 s once beside the other pytest-xdist worker's tiny
    # run, as the plugin's polling interval grows 10 s per check that finds nothing finished.
    assert "SLURM status is: 'FAILED'" in run.output, run.describe()
    submitted = _submitted_job_ids(run.output)
    assert len(submitted) == 1, run.describe()
    # The job was accepted and ran (its log line exists), so the failure is the
    # job's own exit status, not a rejected submission.
    assert (tmp_path / "toy" / "logs" / "fail.log").read_text().strip() == "failing on purpose"
    assert "Error in rule fail" in run.output, run.describe()
    assert _slurm_jobs_started_in(tmp_path).get(submitted[0]) == "FAILED"
    assert not (tmp_path / "toy" / "never.txt").exists()


def _cells_without_wall_time(path: Path) -> list[list[str]]:
    """The table's cells exactly as written, header first, minus the columns ending in seconds."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows:
        return rows
    header = rows[0]
    kept = [i for i, name in enumerate(header) if not name.endswith(WALL_TIME_SUFFIX)]
    # A ragged row is kept whole so that it still shows up as a difference.
    return [[row[i] for i in kept] if len(row) == len(header) else row for row in rows]


@pytest.mark.cluster
@pytest.mark.pipeline
def test_tiny_pipeline_through_slurm_matches_local_run(
    slurm_cluster, tiny_configfile_args, make_repository_copy, request
):
    workdir = make_repository_copy("tiny_slurm")
    run = _run_through_slurm(
        workdir,
        "--workflow-profile",
        DEFAULT_PROFILE,
        # The workflow profile's `cores: all` overrides the test profile's `cores: 1`, and a
        # group job asks Slurm for the main process's cores: with `all`, each group job took
        # the whole 2-CPU node, so they ran one at a time, each using one CPU.
        "--cores",
        "1",
        *tiny_configfile_args,
        timeout=TINY_TIMEOUT_SECONDS,
    )
    submitted = _submitted_job_ids(run.output)
    print(f"\ntiny pipeline through Slurm: {run.seconds:.1f} s, {len(submitted)} Slurm jobs")
    run.assert_ok()
    assert submitted, f"no job went through Slurm, so nothing was compared: {run.describe()}"
    cpus = _slurm_cpus_of(submitted)
    assert set(cpus.values()) == {1}, f"group jobs should each ask for one of the node's CPUs: {cpus}"

    # Asked for only now, so that under pytest-xdist another worker can make the local run
    # while this one waits on Slurm (the local run is shared across workers, see repro_support).
    tiny_run_cores2 = request.getfixturevalue("tiny_run_cores2")
    local_tables = tiny_run_cores2.workdir / "results" / "tables"
    slurm_tables = workdir / "results" / "tables"
    local_names = sorted(p.name for p in local_tables.glob("*.csv"))
    assert local_names, "the local tiny run wrote no results/tables/*.csv"
    assert sorted(p.name for p in slurm_tables.glob("*.csv")) == local_names
    differing = [
        name
        for name in local_names
        if (local_tables / name).read_bytes() != (slurm_tables / name).read_bytes()
        and _cells_without_wall_time(local_tables / name) != _cells_without_wall_time(slurm_tables / name)
    ]
    assert not differing, f"tables differ between the Slurm and the local run: {differing}"


@pytest.mark.pipeline
def test_cluster_profile_is_accepted_by_snakemake_and_the_plugin(tmp_path):
    """The real-cluster profile parses (a misspelt key is an error) and keeps sacct polling."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[cluster]'")
    profile = yaml.safe_load((CLUSTER_PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    # Real clusters have accounting; squeue polling is a workaround for the test cluster only.
    assert "slurm-status-command" not in profile
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(profile["default-resources"])

    dry_run = run_snakemake(
        tmp_path,
        "--dry-run",
        "--snakefile",
        str(TOY_SNAKEFILE),
        "--profile",
        str(CLUSTER_PROFILE),
        timeout=120,
    )
    dry_run.assert_ok()
    # A rule without resources of its own (`all`) gets the profile's defaults.
    defaults = profile["default-resources"]
    expected = rf"mem_mb={defaults['mem_mb']}\b.*runtime={defaults['runtime']}\b"
    assert re.search(expected, dry_run.output), dry_run.describe()


def test_test_profiles_groups_form_a_valid_dag_of_the_tiny_run(make_repository_copy, tiny_configfile_args):
    """Every rule between two grouped rules is in the group too (Snakemake refuses the DAG otherwise).

    A dry run with the test profile's groups and the local executor: no Slurm needed. It caught
    dlpfc_hc_start, added between dlpfc_features and dlpfc_fit but left out of their group.
    """
    workdir = make_repository_copy("groups")
    groups = yaml.safe_load((TEST_PROFILE / "config.yaml").read_text())["groups"]
    dry_run = run_snakemake(
        workdir, "--dry-run", "--cores", "2", *tiny_configfile_args, "--groups", *groups, timeout=300
    )
    dry_run.assert_ok()
    assert "Error in group" not in dry_run.output, dry_run.describe()
