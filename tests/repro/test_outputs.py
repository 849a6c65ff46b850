"""The declaration of the pipeline's files (sinkhorn_em_repro.outputs) and the typed reading of tables."""

from __future__ import annotations

import pandas as pd
import pytest

from sinkhorn_em_repro import outputs
from sinkhorn_em_repro.pipeline import read_table, write_table


def test_every_declared_table_lies_under_results_and_final_tables_under_tables():
    for table in outputs.TABLES:
        assert table.path.startswith(f"{outputs.RESULTS}/"), table.path
        if table.path.startswith(f"{outputs.TABLES_DIR}/") and "{" not in table.path:
            assert table.final, f"{table.path} is under results/tables/ but not promised"
    paths = [table.path for table in outputs.TABLES]
    assert len(paths) == len(set(paths)), "a table is declared twice"


def test_claims_read_declared_final_tables_and_figures_name_known_claims():
    for claim_id, names in outputs.CLAIM_TABLES.items():
        for name in names:
            assert outputs.table(name).final, (claim_id, name)
    for figure in outputs.FIGURES:
        assert set(figure.claims) <= set(outputs.CLAIM_TABLES), figure.stem
    with pytest.raises(KeyError, match="declare it"):
        outputs.table("no_such_table")


def test_table_at_finds_the_declaration_under_any_working_directory(tmp_path):
    chunk = tmp_path / "copy" / "results/osmfish/fits/region/expr/true/sEM/chunk3.csv"
    assert outputs.table_at(chunk) is outputs.OSMFISH_FIT
    assert outputs.table_at("results/sweeps/init/runs/K3_d2_w0.5-0.3-0.2_sep2/data0_inits0-1.csv") is (
        outputs.SWEEP_CHUNK
    )
    assert outputs.table_at("results/tables/osmfish.csv") is outputs.OSMFISH
    assert outputs.table_at(tmp_path / "elsewhere.csv") is None


def test_final_outputs_list_each_family_s_tables_and_figures():
    promised = outputs.final_outputs("osmfish")
    assert "results/tables/osmfish_seeds.csv" in promised
    assert {"results/figures/osmfish_ari.pdf", "results/figures/osmfish_ari.png"} <= set(promised)
    assert all("results/osmfish/" not in path for path in promised), "intermediates are not final outputs"


def test_read_table_gives_labels_and_flags_their_declared_types(tmp_path):
    # Left to its own guessing, pandas reads "true" as a boolean and "1.0313" as a number.
    path = tmp_path / "results/tables/landscape_minima.csv"
    write_table(
        pd.DataFrame({"alpha": [0.7], "loss": ["nll"], "minima": ["1.0313"], "global_minimizers_agree": [True]}),
        path,
    )
    assert pd.read_csv(path)["minima"].dtype.kind == "f"
    minima = read_table(path)
    assert minima["minima"].tolist() == ["1.0313"]
    assert minima["global_minimizers_agree"].dtype == bool
    seeds = tmp_path / "seeds.csv"
    write_table(pd.DataFrame({"weights": ["true", "true"], "converged": [True, False]}), seeds)
    assert pd.read_csv(seeds)["weights"].dtype == bool
    typed = read_table(seeds, outputs.OSMFISH_SEEDS)
    assert typed["weights"].tolist() == ["true", "true"] and typed["converged"].tolist() == [True, False]
