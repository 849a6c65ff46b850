"""Support of the pipeline tests: repository paths, real Snakemake runs and their fixtures.

Pipeline tests never run Snakemake inside the checkout. They copy the files git
would ship (tracked files plus untracked files that are not ignored, so work not
yet committed is tested too, while ``results/``, ``resources/`` and ``.venv/``
stay behind) into a temporary directory and run there. A tiny run costs minutes,
so each variant runs once per test session and every test that needs it shares
the result through a session-scoped fixture (``tiny_run_cores2``,
``tiny_run_cores1``). Under pytest-xdist (``make test`` runs two workers) "once per
session" holds across the workers too: the first worker to need a run makes it under a
file lock, the others wait for it and read its record.

The datasets come from a local mirror when one is found (the environment variable
``SINKHORN_EM_MIRROR``, else ``../shared/data`` beside the repository, which is
where CI has it), passed to the pipeline as the ``datasets.mirror`` config key in
an override file; without a mirror the pipeline downloads from upstream.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# sinkhorn_em_repro is not in the library's wheel: the tests import it (and sinkhorn_em)
# from this checkout's src/, whatever is installed.
if str(REPO_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "src"))
TINY_CONFIG = "tests/config/config.yaml"
DEFAULT_PROFILE = "workflow/profiles/default"
MIRROR_ENV_VAR = "SINKHORN_EM_MIRROR"
# Generous: the tiny DAG must finish in 3 minutes on 2 cores; this only keeps a
# hung run (a job waiting forever) from eating the whole CI budget.
RUN_TIMEOUT_SECONDS = float(os.environ.get("SINKHORN_EM_TEST_RUN_TIMEOUT", 20 * 60))
# Environment variables that would make a test run depend on the developer's
# shell: SNAKEMAKE_PROFILE silently adds a profile to every snakemake call.
_LEAKY_ENV_VARS = ("SNAKEMAKE_PROFILE", "SNAKEMAKE_OUTPUT_CACHE")


@dataclasses.dataclass(frozen=True)
class SnakemakeRun:
    """One finished ``snakemake`` invocation.

    Attributes
    ----------
    workdir : Path
        Directory it ran in (a copy of the repository).
    args : tuple of str
        Arguments after ``snakemake``.
    returncode : int
        Exit status.
    output : str
        Standard output and standard error, interleaved as printed.
    seconds : float
        Wall time of the invocation.
    cpu_seconds : float
        User plus system CPU time of Snakemake and every job it ran: unlike the
        wall time, hardly affected by other work on the machine.
    """

    workdir: Path
    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float
    cpu_seconds: float

    def describe(self, tail_lines: int = 80) -> str:
        """The command, its exit status and the end of its output, for failure messages."""
        tail = "\n".join(self.output.splitlines()[-tail_lines:])
        return (
            f"`snakemake {' '.join(self.args)}` in {self.workdir} exited with "
            f"{self.returncode} after {self.seconds:.1f} s (CPU {self.cpu_seconds:.1f} s); "
            f"last {tail_lines} lines:\n{tail}"
        )

    def assert_ok(self) -> None:
        """Fail the calling test, with the log tail, unless the run exited 0."""
        if self.returncode != 0:
            pytest.fail(self.describe(), pytrace=False)


@dataclasses.dataclass(frozen=True)
class TinyRun:
    """A completed run of the tiny configuration, shared by the tests of a session.

    Attributes
    ----------
    run : SnakemakeRun
        The run itself; its ``workdir`` holds ``results/`` afterwards.
    configfile_args : tuple of str
        The ``--configfile`` arguments it used: pass the same ones to any later
        command in ``run.workdir`` (a second run, ``--report``) so it sees the same config.
    cores : int
        The ``--cores`` it ran with.
    """

    run: SnakemakeRun
    configfile_args: tuple[str, ...]
    cores: int

    @property
    def workdir(self) -> Path:
        return self.run.workdir


def mirror_directory() -> Path | None:
    """The local datasets mirror, or None when the pipeline should download.

    Raises
    ------
    ValueError
        If ``SINKHORN_EM_MIRROR`` is set but is not a directory.
    """
    configured = os.environ.get(MIRROR_ENV_VAR)
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.is_dir():
            raise ValueError(
                f"{MIRROR_ENV_VAR}={configured!r} is not a directory: point it at the "
                "datasets mirror (the folder holding SHA256SUMS) or unset it to download."
            )
        return path
    beside_repository = REPO_ROOT.parent / "shared" / "data"
    return beside_repository.resolve() if beside_repository.is_dir() else None


def shipped_files(root: Path = REPO_ROOT) -> list[str]:
    """Paths, relative to ``root``, of the files a clone plus uncommitted work would hold."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(
            f"cannot list the repository files with git in {root} ({error}); the "
            "pipeline tests need a git checkout with git on PATH"
        ) from error
    names = [name for name in listing.decode().split("\0") if name]
    # A file deleted in the work tree but still in the index is not shipped.
    return [name for name in names if (root / name).is_file() or (root / name).is_symlink()]


def copy_repository(destination: Path, root: Path = REPO_ROOT) -> Path:
    """Copy the shipped files of ``root`` into ``destination`` (created) and return it."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in shipped_files(root):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target, follow_symlinks=False)
    return destination


def _subprocess_environment(workdir: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in _LEAKY_ENV_VARS}
    # Jobs run `python` and console scripts of the interpreter running the tests.
    bin_dir = str(Path(sys.executable).parent)
    environment["PATH"] = os.pathsep.join([bin_dir, environment.get("PATH", "")])
    # The rule files and jobs import sinkhorn_em from the copy they run in, not from
    # wherever the package is installed: the run tests exactly the copied tree.
    search_path = [str(workdir / "src"), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, search_path))
    return environment


def run_snakemake(workdir: Path, *args: str, timeout: float = RUN_TIMEOUT_SECONDS) -> SnakemakeRun:
    """Run ``python -m snakemake ARGS`` in ``workdir`` and return what happened.

    The run gets its own process group so that, on timeout, Snakemake and every
    job it started are killed together instead of lingering on a 2-core machine.
    """
    command = [sys.executable, "-m", "snakemake", *args]
    start = time.perf_counter()
    # Descendants' CPU time reaches us once Snakemake has reaped its jobs and we reap it.
    cpu_start = _children_cpu_seconds()
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

    def finished(returncode: int, output: str) -> SnakemakeRun:
        return SnakemakeRun(
            workdir=workdir,
            args=tuple(args),
            returncode=returncode,
            output=output,
            seconds=time.perf_counter() - start,
            cpu_seconds=_children_cpu_seconds() - cpu_start,
        )

    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        run = finished(-signal.SIGKILL, output)
        pytest.fail(f"timed out after {timeout:.0f} s: {run.describe()}", pytrace=False)
    return finished(process.returncode, output)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_RULE_ALL_HEADER = re.compile(r"^(?:local)?rule all:\s*$")
_INPUT_LINE = re.compile(r"^\s+input:\s*(?P<files>.*)$")
# Snakemake appends annotations such as " (retrieve from storage)" to some paths.
_ANNOTATION = re.compile(r"\s+\([^()]*\)$")


def declared_final_outputs(dry_run_output: str) -> list[str]:
    """The inputs of the ``all`` target, read from a ``snakemake -n`` that schedules it.

    This is ``FINAL_OUTPUTS`` as the workflow really evaluates it for that config,
    so the tests never carry a hand-written list that could drift from the rules.
    Returns an empty list when ``all`` has no inputs.

    Raises
    ------
    ValueError
        If the output shows no ``all`` job (the dry run did not schedule it).
    """
    lines = dry_run_output.splitlines()
    for index, line in enumerate(lines):
        if not _RULE_ALL_HEADER.match(line):
            continue
        for detail in lines[index + 1 :]:
            if not detail.startswith((" ", "\t")):
                break
            match = _INPUT_LINE.match(detail)
            if match:
                files = [_ANNOTATION.sub("", name.strip()) for name in match["files"].split(", ")]
                return [name for name in files if name]
        return []
    raise ValueError(
        "the dry run did not schedule the `all` target; run it on a fresh copy or with "
        "--forceall. Output was:\n" + dry_run_output[-4000:]
    )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Root of the checkout under test."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def mirror_dir() -> Path | None:
    """The datasets mirror used by pipeline runs, or None (download from upstream)."""
    return mirror_directory()


@pytest.fixture(scope="session")
def tiny_configfile_args(tmp_path_factory, mirror_dir) -> tuple[str, ...]:
    """``--configfile`` arguments of the tiny run: the tiny config, then the mirror override.

    The tiny config is named relative to the working directory, so each copy of the
    repository reads its own; the override lives outside every copy (absolute path).
    """
    files = [TINY_CONFIG]
    if mirror_dir is not None:
        override = tmp_path_factory.mktemp("config") / "mirror.yaml"
        override.write_text(yaml.safe_dump({"datasets": {"mirror": str(mirror_dir)}}))
        files.append(str(override))
    return ("--configfile", *files)


@pytest.fixture(scope="session")
def make_repository_copy(tmp_path_factory):
    """Factory: ``make_repository_copy(name)`` returns a fresh copy of the shipped tree."""

    def make(name: str) -> Path:
        return copy_repository(tmp_path_factory.mktemp(name))

    return make


@pytest.fixture(scope="session")
def pristine_copy(make_repository_copy) -> Path:
    """A copy in which no job ever runs: for lint, dry runs and rejected configs."""
    return make_repository_copy("pristine")


@pytest.fixture(scope="session")
def final_outputs(pristine_copy, tiny_configfile_args) -> list[str]:
    """Every figure and table the workflow promises (``FINAL_OUTPUTS``) under the tiny config."""
    dry_run = run_snakemake(pristine_copy, "--dry-run", "--forceall", *tiny_configfile_args)
    dry_run.assert_ok()
    return declared_final_outputs(dry_run.output)


def _tiny_run(make_repository_copy, configfile_args, cores: int) -> TinyRun:
    workdir = make_repository_copy(f"tiny_cores{cores}")
    run = run_snakemake(
        workdir,
        "--workflow-profile",
        DEFAULT_PROFILE,
        "--cores",
        str(cores),
        *configfile_args,
    )
    print(f"\ntiny run with --cores {cores}: {run.seconds:.1f} s wall, {run.cpu_seconds:.1f} s CPU")
    return TinyRun(run=run, configfile_args=configfile_args, cores=cores)


def _tiny_run_to_json(tiny: TinyRun) -> str:
    run = dataclasses.asdict(tiny.run)
    run["workdir"] = str(tiny.run.workdir)
    return json.dumps({"run": run, "configfile_args": tiny.configfile_args, "cores": tiny.cores})


def _tiny_run_from_json(text: str) -> TinyRun:
    record = json.loads(text)
    run = record["run"]
    run = SnakemakeRun(**{**run, "workdir": Path(run["workdir"]), "args": tuple(run["args"])})
    return TinyRun(run=run, configfile_args=tuple(record["configfile_args"]), cores=record["cores"])


def _shared_tiny_run(tmp_path_factory, make_repository_copy, configfile_args, cores: int) -> TinyRun:
    """The tiny run with ``cores``, made once per session even when xdist runs several workers.

    Each worker has its own session fixtures, so without this every worker whose tests ask
    for a tiny run would repeat it (minutes each, on a 2-core machine). The workers of one
    session share the parent of their base temporary directories: the first one to get the
    lock makes the run (in its own temporary directory, which outlives the worker) and writes
    its record; the others wait on the lock, then read the record. The run is recorded
    whatever its exit status, so a failed run fails every test that uses it, without reruns.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        tiny = _tiny_run(make_repository_copy, configfile_args, cores)
    else:
        shared = tmp_path_factory.getbasetemp().parent
        record = shared / f"tiny_run_cores{cores}.json"
        with open(shared / f"tiny_run_cores{cores}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if record.is_file():
                tiny = _tiny_run_from_json(record.read_text())
            else:
                tiny = _tiny_run(make_repository_copy, configfile_args, cores)
                record.write_text(_tiny_run_to_json(tiny))
    tiny.run.assert_ok()
    return tiny


@pytest.fixture(scope="session")
def tiny_run_cores2(tmp_path_factory, make_repository_copy, tiny_configfile_args) -> TinyRun:
    """The tiny config run end to end with ``--cores 2``, once per session.

    Fails (as a setup error of every test using it) when the run fails. Tests may
    run more commands in ``workdir`` but must not change what it produced: other
    tests, such as the Slurm comparison, compare against it.
    """
    return _shared_tiny_run(tmp_path_factory, make_repository_copy, tiny_configfile_args, cores=2)


@pytest.fixture(scope="session")
def tiny_run_cores1(tmp_path_factory, make_repository_copy, tiny_configfile_args) -> TinyRun:
    """The tiny config run end to end with ``--cores 1``, in its own copy, once per session."""
    return _shared_tiny_run(tmp_path_factory, make_repository_copy, tiny_configfile_args, cores=1)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """One BLAS thread for the whole session: the tests use small matrices, on which
    OpenBLAS threads only spin, and the pipeline jobs run single-threaded too."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture
def saved_figures(monkeypatch) -> list:
    """Every matplotlib figure the plotting modules save during a test, in order.

    ``save_figure`` is wrapped in each plotting module: the figure is still written (PDF
    and PNG) and closed, and its axes stay readable, so a test can compare the plotted
    lines with numbers it computes from the table itself.
    """
    import importlib
    import pkgutil

    import sinkhorn_em_repro.plotting as plotting
    from sinkhorn_em_repro.plotting import style

    figures = []
    real = style.save_figure

    def save_and_keep(fig, *args, **kwargs):
        figures.append(fig)
        return real(fig, *args, **kwargs)

    # Import every module before patching any: a module imported after style is patched
    # would bind the wrapper of this test for good.
    modules = [
        importlib.import_module(f"{plotting.__name__}.{m.name}") for m in pkgutil.iter_modules(plotting.__path__)
    ]
    for module in modules:
        if getattr(module, "save_figure", None) is real:
            monkeypatch.setattr(module, "save_figure", save_and_keep)
    return figures
