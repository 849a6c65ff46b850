"""The Snakemake workflow run for real: lint, dry runs, the tiny config end to end.

Every test here runs ``snakemake`` in a copy of the repository (see repro_support.py).
The tiny run is shared: one ``--cores 2`` run (and one ``--cores 1`` run for the
determinism check) per session.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import yaml

from repro_support import DEFAULT_PROFILE, TINY_CONFIG, declared_final_outputs, run_snakemake

pytestmark = pytest.mark.pipeline

WALL_TIME_SUFFIX = "seconds"
# The tests that run Snakemake in the shared tiny run's directory go to one pytest-xdist worker,
# one after another, so that two Snakemake processes never work in that directory at once.
IN_THE_TINY_RUNS_DIRECTORY = pytest.mark.xdist_group("tiny_run_cores2_workdir")


def test_workflow_passes_lint(pristine_copy):
    lint = run_snakemake(pristine_copy, "--lint")
    lint.assert_ok()


def test_default_config_dry_run_schedules_every_final_output(pristine_copy, final_outputs):
    dry_run = run_snakemake(pristine_copy, "--dry-run", "--workflow-profile", DEFAULT_PROFILE)
    dry_run.assert_ok()
    # The tiny config is a scaled-down default: it must promise the same figures
    # and tables, otherwise the tiny run would not test them. (It may fetch fewer
    # datasets: those are inputs under resources/, not results.)
    default_results = {p for p in declared_final_outputs(dry_run.output) if p.startswith("results/")}
    tiny_results = {p for p in final_outputs if p.startswith("results/")}
    assert sorted(default_results - tiny_results) == [], "made by the default config only"
    assert sorted(tiny_results - default_results) == [], "made by the tiny config only"


def test_workflow_declares_final_outputs(final_outputs):
    assert final_outputs, "no family appends anything to FINAL_OUTPUTS (workflow/rules/common.smk)"
    duplicated = sorted({path for path in final_outputs if final_outputs.count(path) > 1})
    assert not duplicated, f"appended to FINAL_OUTPUTS more than once: {duplicated}"


def test_tiny_run_creates_every_final_output_non_empty(tiny_run_cores2, final_outputs):
    missing = [path for path in final_outputs if not (tiny_run_cores2.workdir / path).is_file()]
    empty = [
        path
        for path in final_outputs
        if (tiny_run_cores2.workdir / path).is_file() and (tiny_run_cores2.workdir / path).stat().st_size == 0
    ]
    assert not missing, f"declared but not created: {missing}"
    assert not empty, f"created empty: {empty}"


@IN_THE_TINY_RUNS_DIRECTORY
def test_second_tiny_run_has_nothing_to_do(tiny_run_cores2, final_outputs):
    workdir = tiny_run_cores2.workdir
    before = {path: (workdir / path).stat().st_mtime_ns for path in final_outputs}
    again = run_snakemake(
        workdir,
        "--workflow-profile",
        DEFAULT_PROFILE,
        "--cores",
        str(tiny_run_cores2.cores),
        *tiny_run_cores2.configfile_args,
    )
    again.assert_ok()
    if "Nothing to be done" not in again.output:
        pytest.fail(f"the second run scheduled jobs: {again.describe()}", pytrace=False)
    after = {path: (workdir / path).stat().st_mtime_ns for path in final_outputs}
    assert after == before, "a second run rewrote final outputs"


INVALID_CONFIGS = [
    pytest.param({"seeed": 1}, "seeed", id="unknown-top-level-key"),
    pytest.param({"landscape": {"no_such_option": 1}}, "no_such_option", id="unknown-key-in-section"),
    pytest.param({"seed": "twenty"}, "seed", id="wrong-type"),
    pytest.param({"sweep_scale": 0}, "sweep_scale", id="out-of-range"),
]


@pytest.mark.parametrize(("override", "key"), INVALID_CONFIGS)
def test_invalid_config_is_rejected_before_any_job(pristine_copy, tmp_path, override, key):
    override_file = tmp_path / "invalid.yaml"
    override_file.write_text(yaml.safe_dump(override))
    # A real run, not a dry run: if validation let the config through, jobs would start.
    rejected = run_snakemake(
        pristine_copy, "--cores", "1", "--configfile", TINY_CONFIG, str(override_file), timeout=300
    )
    assert rejected.returncode != 0, rejected.describe()
    assert re.search(rf"['\"]{re.escape(key)}['\"]", rejected.output), (
        f"the error does not name {key!r}: {rejected.describe()}"
    )
    assert "Building DAG of jobs" not in rejected.output, rejected.describe()
    produced = [
        str(path.relative_to(pristine_copy))
        for path in (pristine_copy / "results").rglob("*")
        if path.name != "README.md"
    ]
    assert produced == [], "a rejected config produced results"


def _table_without_wall_time(path: Path) -> list[list[str]]:
    """The table's cells as written, header first, minus the wall-time columns."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows:
        return rows
    header = rows[0]
    kept = [i for i, name in enumerate(header) if not name.endswith(WALL_TIME_SUFFIX)]
    # A ragged row is kept whole, so that it still shows up as a difference.
    return [[row[i] for i in kept] if len(row) == len(header) else row for row in rows]


def test_tables_do_not_depend_on_cores(tiny_run_cores1, tiny_run_cores2):
    tables1 = sorted(p.name for p in (tiny_run_cores1.workdir / "results" / "tables").glob("*.csv"))
    tables2 = sorted(p.name for p in (tiny_run_cores2.workdir / "results" / "tables").glob("*.csv"))
    assert tables1 == tables2
    assert tables2, "the tiny run wrote no results/tables/*.csv"
    differing = []
    for name in tables2:
        path1 = tiny_run_cores1.workdir / "results" / "tables" / name
        path2 = tiny_run_cores2.workdir / "results" / "tables" / name
        if path1.read_bytes() == path2.read_bytes():
            continue
        cells1, cells2 = _table_without_wall_time(path1), _table_without_wall_time(path2)
        if cells1 != cells2:
            first = next(
                (i for i, (a, b) in enumerate(zip(cells1, cells2)) if a != b),
                min(len(cells1), len(cells2)),
            )
            differing.append(f"{name} (first difference at line {first + 1})")
    assert not differing, f"--cores 1 and --cores 2 gave different tables: {differing}"


def _report_entries(html: str) -> dict:
    """The files registered with report(...), as embedded in a self-contained HTML report."""
    match = re.search(r'<script id="results">\s*var results = (\{.*?\});\s*</script>', html, re.DOTALL)
    if match is None:
        raise ValueError("no `var results = {...}` block: has Snakemake's report layout changed?")
    return json.loads(match.group(1))


@IN_THE_TINY_RUNS_DIRECTORY
def test_html_report_shows_every_figure_with_a_caption(tiny_run_cores2, final_outputs):
    report = tiny_run_cores2.workdir / "results" / "report.html"
    made = run_snakemake(tiny_run_cores2.workdir, "--report", str(report), *tiny_run_cores2.configfile_args)
    made.assert_ok()
    entries = _report_entries(report.read_text())
    # A figure is usually written twice (PDF and PNG); one of its files in the report suffices.
    figures = {}
    for path in final_outputs:
        if path.startswith("results/figures/"):
            figures.setdefault(str(Path(path).with_suffix("")), []).append(path)
    unreported = [stem for stem, paths in figures.items() if not set(paths) & set(entries)]
    assert not unreported, f"figures not wrapped in report(...): {unreported}"
    uncaptioned = [path for path, entry in entries.items() if not entry.get("caption", "").strip()]
    assert not uncaptioned, f"report entries without a caption: {uncaptioned}"
