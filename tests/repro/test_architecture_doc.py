"""docs/ARCHITECTURE.md is true to the code where it names modules.

The module tables of the doc sit under headings naming their package (``src/sinkhorn_em``,
``sinkhorn_em_repro.experiments``, ``workflow/rules``). Each row names a module (``x.py``,
``x.smk``) or a subpackage (``x/``, whose modules are the bare ``y.py`` names of its
description). Every name must exist, and every module of the packages must be named:
a module added to the code without a row, or a row left behind by a removed module, fails
here with the exact path to add or remove.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repro_support import REPO_ROOT

DOC = REPO_ROOT / "docs" / "ARCHITECTURE.md"
# Packages whose every module the doc must name, with the files that count as modules.
DOCUMENTED_TREES = {
    "src/sinkhorn_em": "*.py",
    "src/sinkhorn_em_repro": "*.py",
    "workflow/rules": "*.smk",
}
_BACKTICKED = re.compile(r"`([^`]+)`")
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_]+\.(py|smk)$")
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9_]+/$")


def _heading_package(heading: str) -> Path | None:
    """The directory a heading names: a backticked ``src/...``/``workflow/...`` path or dotted package."""
    for token in _BACKTICKED.findall(heading):
        if token.startswith(("src/", "workflow/")):
            return Path(token.rstrip("/"))
        if re.fullmatch(r"sinkhorn_em(_repro)?(\.[a-z_]+)*", token):
            return Path("src", *token.split("."))
    return None


def named_paths(text: str) -> dict[Path, int]:
    """Every module or package path the doc's tables name, relative to the repository, with its line."""
    named: dict[Path, int] = {}
    package = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            package = _heading_package(line)
            continue
        if package is None or not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        first = _BACKTICKED.findall(cells[0])
        if not first:
            continue  # the header row
        name = first[0]
        if _MODULE_NAME.match(name):
            named.setdefault(package / name, number)
        elif _PACKAGE_NAME.match(name):
            subpackage = package / name.rstrip("/")
            named.setdefault(subpackage, number)
            for token in _BACKTICKED.findall(" ".join(cells[1:])):
                if _MODULE_NAME.match(token):
                    named.setdefault(subpackage / token, number)
    return named


def code_modules() -> set[Path]:
    """Every module of the documented packages (``__init__.py`` aside: its package's row covers it)."""
    modules = set()
    for tree, pattern in DOCUMENTED_TREES.items():
        for path in (REPO_ROOT / tree).rglob(pattern):
            if path.name != "__init__.py" and "__pycache__" not in path.parts:
                modules.add(path.relative_to(REPO_ROOT))
    return modules


@pytest.fixture(scope="module")
def doc_paths() -> dict[Path, int]:
    paths = named_paths(DOC.read_text())
    assert paths, "no module table found in docs/ARCHITECTURE.md"
    return paths


def test_every_module_the_doc_names_exists(doc_paths):
    stale = [
        f"{path} (docs/ARCHITECTURE.md line {line})"
        for path, line in doc_paths.items()
        if not (REPO_ROOT / path).exists()
    ]
    assert not stale, (
        "docs/ARCHITECTURE.md names modules that do not exist; remove or fix these rows:\n  " + "\n  ".join(stale)
    )


def test_every_module_is_named_in_the_doc(doc_paths):
    missing = sorted(str(path) for path in code_modules() - set(doc_paths))
    assert not missing, (
        "modules missing from docs/ARCHITECTURE.md; add a row to the table of their package "
        "(a subpackage's modules go in its row's description as `name.py`):\n  " + "\n  ".join(missing)
    )


def test_the_parser_sees_a_missing_and_a_stale_module():
    # The two checks above are only as good as the parsing: a table naming `gone.py`
    # and a subpackage row naming `kept.py` must yield exactly those paths.
    text = "\n".join(
        [
            "## The library (`src/sinkhorn_em`)",
            "| module | what |",
            "|---|---|",
            "| `gone.py` | mentions `mixture.py`, not a row of its own |",
            "### Families (`sinkhorn_em_repro.experiments`)",
            "| family | modules |",
            "|---|---|",
            "| `sweeps/` | `kept.py` (see `tests/test_x.py`) |",
        ]
    )
    assert set(named_paths(text)) == {
        Path("src/sinkhorn_em/gone.py"),
        Path("src/sinkhorn_em_repro/experiments/sweeps"),
        Path("src/sinkhorn_em_repro/experiments/sweeps/kept.py"),
    }
