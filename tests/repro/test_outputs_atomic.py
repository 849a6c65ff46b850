"""Outputs appear whole or not at all, and a stale Snakemake lock is recognised as stale."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from sinkhorn_em_repro.locks import running_snakemake_processes, stale_lock_files, unlock_if_stale
from sinkhorn_em_repro.pipeline import atomic_output, read_table, write_table


def test_a_failed_write_keeps_the_previous_table_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "tables" / "t.csv"
    write_table(pd.DataFrame({"a": [1, 2]}), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), atomic_output(path) as partial:
        partial.write_text("a\n9\n")  # half a table ...
        raise RuntimeError("killed")  # ... then the job dies
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]


def test_a_successful_write_replaces_the_file_and_keeps_the_suffix_for_format_detection(tmp_path):
    path = tmp_path / "figure.pdf"
    with atomic_output(path) as partial:
        assert partial.suffix == ".pdf" and partial.parent == tmp_path and not path.exists()
        partial.write_bytes(b"%PDF-1.4 ... %%EOF")
    assert path.read_bytes().endswith(b"%%EOF")
    write_table(pd.DataFrame({"x": [0.5]}), tmp_path / "t.csv")
    assert read_table(tmp_path / "t.csv")["x"].tolist() == [0.5]


def test_a_lock_without_a_snakemake_process_is_stale_and_removed(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x\n")
    partial = tmp_path / "results" / "tables" / ".t.123.partial.csv"
    partial.parent.mkdir(parents=True)
    partial.write_text("a\n")
    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    assert stale_lock_files(tmp_path) and running_snakemake_processes(tmp_path) == []
    assert unlock_if_stale(tmp_path)
    assert stale_lock_files(tmp_path) == [] and not partial.exists()
    assert not unlock_if_stale(tmp_path), "nothing to do without a lock"


def test_a_lock_held_by_a_running_snakemake_is_left_alone(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x\n")
    # Any process whose command line names snakemake and that runs in the directory counts.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "snakemake"], cwd=tmp_path)
    try:
        for _ in range(50):
            if running_snakemake_processes(tmp_path):
                break
        assert running_snakemake_processes(tmp_path) == [holder.pid]
        assert not unlock_if_stale(tmp_path)
        assert stale_lock_files(tmp_path)
    finally:
        holder.kill()
        holder.wait()
