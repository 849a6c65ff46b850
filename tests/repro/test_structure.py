"""The floors of ``sinkhorn_em_repro``: imports only run downwards and never close a circle.

The floors, from the bottom: the base (modules directly under the package, and ``symmetric``),
``datasets`` (read files), ``experiments`` (compute tables), then ``experiments.report`` (reads
tables into verdicts) and ``plotting`` (reads tables into figures). The graph is read from the
source with :mod:`ast`, every ``import`` counted wherever it stands (a function-level import is
still an import), and importing ``a.b.c`` also runs the packages ``a.b`` and ``a``, so those count
as imported too: a circle through a package ``__init__`` is a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "sinkhorn_em_repro"
SOURCE = Path(__file__).resolve().parents[2] / "src"

#: Floor of a module, by the longest matching prefix; anything else is the base.
FLOORS = {
    f"{PACKAGE}.datasets": "datasets",
    f"{PACKAGE}.experiments": "experiments",
    f"{PACKAGE}.experiments.report": "report",
    f"{PACKAGE}.plotting": "plotting",
}
#: Floors that a floor must not import (the rest is allowed).
FORBIDDEN = {
    "base": {"datasets", "experiments", "report", "plotting"},
    "datasets": {"experiments", "report", "plotting"},
    "experiments": {"report", "plotting"},
    "plotting": {"experiments", "report"},
    "report": {"plotting"},
}
#: Imports across a forbidden direction that are accepted, each with its reason: (importer, imported) -> why.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _modules(source: Path = SOURCE) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) of every module of the package."""
    found = {}
    for path in sorted((source / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(source).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(source: Path = SOURCE) -> dict[str, dict[str, int]]:
    """Importer -> {imported module of the package: line of the first such import}."""
    modules = _modules(source)
    graph = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
                # `from a import b` imports the module a.b when there is one, else a name of a.
                named = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in named:
                if target not in modules:
                    continue
                # The packages above the target run first, unless they already hold the importer.
                for imported in [*_ancestors(target), target]:
                    if imported in modules and imported != name and imported not in _ancestors(name):
                        targets.setdefault(imported, node.lineno)
        graph[name] = targets
    return graph


def floor(name: str) -> str:
    prefixes = [p for p in FLOORS if name == p or name.startswith(p + ".")]
    return FLOORS[max(prefixes, key=len)] if prefixes else "base"


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    """Every import of a forbidden floor, as ``importer:line -> imported``."""
    found = []
    for importer, targets in graph.items():
        # A package imported only as the parent of another target is that target's import: name the target.
        parents = {ancestor for target in targets for ancestor in _ancestors(target)}
        for imported, line in targets.items():
            if (
                imported not in parents
                and floor(imported) in FORBIDDEN[floor(importer)]
                and (importer, imported) not in EXCEPTIONS
            ):
                found.append(f"{importer}:{line} ({floor(importer)}) -> {imported} ({floor(imported)})")
    return sorted(found)


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def test_the_graph_sees_top_level_function_level_relative_and_package_imports(tmp_path):
    package = tmp_path / PACKAGE
    (package / "datasets").mkdir(parents=True)
    (package / "experiments").mkdir()
    (package / "__init__.py").write_text("")
    (package / "outputs.py").write_text("")
    (package / "datasets" / "__init__.py").write_text("from .reader import read\n")
    (package / "datasets" / "reader.py").write_text(
        "def read():\n    from sinkhorn_em_repro.experiments.scene import build\n    return build\n"
    )
    (package / "experiments" / "__init__.py").write_text("")
    (package / "experiments" / "scene.py").write_text(
        "from sinkhorn_em_repro import outputs\nfrom sinkhorn_em_repro.datasets.reader import read\n"
    )
    graph = import_graph(tmp_path)
    assert graph[f"{PACKAGE}.datasets"] == {f"{PACKAGE}.datasets.reader": 1}
    assert f"{PACKAGE}.experiments.scene" in graph[f"{PACKAGE}.datasets.reader"]
    # Importing datasets.reader runs the package datasets first (its __init__).
    assert set(graph[f"{PACKAGE}.experiments.scene"]) == {
        f"{PACKAGE}.outputs",
        f"{PACKAGE}.datasets",
        f"{PACKAGE}.datasets.reader",
    }
    assert cycles(graph) == [[f"{PACKAGE}.datasets", f"{PACKAGE}.datasets.reader", f"{PACKAGE}.experiments.scene"]]
    assert upward_imports(graph) == [
        f"{PACKAGE}.datasets.reader:2 (datasets) -> {PACKAGE}.experiments.scene (experiments)"
    ]


def test_the_graph_of_the_package_holds_its_known_imports():
    graph = import_graph()
    assert f"{PACKAGE}.fitting" in graph[f"{PACKAGE}.experiments.sweeps.fit"]
    assert f"{PACKAGE}.outputs" in graph[f"{PACKAGE}.plotting.style"]
    assert floor(f"{PACKAGE}.experiments.report.verdicts") == "report"
    assert floor(f"{PACKAGE}.experiments.dlpfc.fits") == "experiments"
    assert floor(f"{PACKAGE}.outputs") == "base"


def test_no_module_of_the_package_imports_itself_back():
    found = cycles(import_graph())
    assert not found, "import circles (move the shared code down a floor): " + "; ".join(
        " <-> ".join(component) for component in found
    )


def test_imports_only_run_down_the_floors():
    graph = import_graph()
    found = upward_imports(graph)
    assert not found, "imports of a higher floor (move the shared code down, e.g. into outputs or labels):\n" + (
        "\n".join(found)
    )
    stale = [pair for pair in EXCEPTIONS if pair[1] not in graph.get(pair[0], {})]
    assert not stale, f"exceptions no longer needed, drop them: {stale}"


# ----------------------------------------------------------------------------- one record of fit options
def test_fit_options_are_the_estimators_parameters_and_reach_it_unchanged():
    from dataclasses import fields

    import numpy as np

    from sinkhorn_em import EOTGaussianMixture
    from sinkhorn_em_repro.fitting import FitOptions, fit_table_method

    names = {each.name for each in fields(FitOptions)}
    assert names <= set(EOTGaussianMixture().get_params()), names - set(EOTGaussianMixture().get_params())
    section = {"tol": 1e-3, "max_iter": 7, "sinkhorn_tol": 1e-5, "reg_covar": 1e-4, "seed": 3, "n_seeds": 2}
    options = FitOptions.from_config(section, epsilon=0.5)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (40, 2)), rng.normal(2, 1, (60, 2))])
    outcome = fit_table_method(
        "sEM",
        X,
        weights=[0.4, 0.6],
        means_init=np.array([[-2.0, 0.0], [2.0, 0.0]]),
        covariances_init=np.stack([np.eye(2)] * 2),
        options=options,
    )
    params = outcome.model.get_params()
    for name, value in {**{k: section[k] for k in names & set(section)}, "epsilon": 0.5}.items():
        assert params[name] == value, name
    assert params["sinkhorn_max_iter"] == FitOptions().sinkhorn_max_iter
    with pytest.raises(TypeError, match="not fit options"):
        FitOptions.from_config({}, sinkhorn_tolerance=1e-5)
    # An option a section leaves out is the estimator's own default, never a drifted copy.
    defaults = EOTGaussianMixture().get_params()
    assert {name: getattr(FitOptions(), name) for name in names} == {name: defaults[name] for name in names}


def test_fit_options_are_checked_in_one_place():
    from sinkhorn_em_repro.experiments.convergence import run_general_k
    from sinkhorn_em_repro.fitting import FitOptions

    options = FitOptions(tol=0.0, max_iter=3)
    assert FitOptions.check(options, fixed_budget_for="a protocol") is options
    with pytest.raises(TypeError, match=r"FitOptions record \(FitOptions.from_config"):
        FitOptions.check({"tol": 0.0})
    with pytest.raises(ValueError, match="a protocol run a fixed number of iterations: options need tol=0"):
        FitOptions.check(options.replace(tol=1e-3), fixed_budget_for="a protocol")
    with pytest.raises(ValueError, match="max_iter >= 1"):
        FitOptions.check(options.replace(max_iter=0), fixed_budget_for="a protocol")
    # A fixed-budget family refuses a tolerance through the same check.
    with pytest.raises(ValueError, match="general-K trajectories run a fixed number of iterations"):
        run_general_k(weights=[0.5, 0.5], n_samples=50, dim=1, n_datasets=1, seed=0, options=options.replace(tol=1e-3))


def _family_fit_functions():
    from sinkhorn_em_repro.experiments import celegans, convergence, osmfish
    from sinkhorn_em_repro.experiments.dlpfc import fits as dlpfc
    from sinkhorn_em_repro.experiments.sweeps import fit as sweeps_fit

    return {
        "osmfish.run_osmfish_chunk": osmfish.run_osmfish_chunk,
        "osmfish.best_seed_maps": osmfish.best_seed_maps,
        "celegans.run_celegans_chunk": celegans.run_celegans_chunk,
        "celegans.segmentation_map": celegans.segmentation_map,
        "convergence.run_general_k": convergence.run_general_k,
        "sweeps._run_chunk": sweeps_fit._run_chunk,
        "dlpfc.run_dlpfc_chunk": dlpfc.run_dlpfc_chunk,
    }


@pytest.mark.parametrize("name", sorted(_family_fit_functions()))
def test_family_fits_take_one_options_record_and_respell_no_option(name):
    import inspect

    from sinkhorn_em_repro.fitting import FitOptions

    parameters = inspect.signature(_family_fit_functions()[name]).parameters
    assert "options" in parameters, f"{name} must take the family's FitOptions record as `options`"
    respelled = sorted(set(parameters) & set(FitOptions.field_names()))
    assert not respelled, f"{name} re-spells fit options {respelled}: read them from `options` instead"


#: What the library's half of the tests may not import: it runs on the core install alone.
PIPELINE_ONLY = ("sinkhorn_em_repro", "snakemake", "yaml", "repro_support")


def imported_top_level_names(path: Path) -> dict[str, int]:
    """Top-level module name -> line of its first absolute import in ``path``."""
    names = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.setdefault(alias.name.split(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.setdefault(node.module.split(".")[0], node.lineno)
    return names


def test_the_library_tests_need_no_pipeline(tmp_path):
    library_tests = sorted((SOURCE.parent / "tests" / "library").glob("*.py"))
    assert len(library_tests) >= 5
    offending = [
        f"{path.name}:{line} imports {name}"
        for path in library_tests
        for name, line in imported_top_level_names(path).items()
        if name in PIPELINE_ONLY
    ]
    assert not offending, "tests/library/ must run on the core install alone: " + "; ".join(offending)
    # The check itself sees such an import.
    planted = tmp_path / "test_planted.py"
    planted.write_text("def test_x():\n    from sinkhorn_em_repro import outputs\n")
    assert imported_top_level_names(planted) == {"sinkhorn_em_repro": 2}
