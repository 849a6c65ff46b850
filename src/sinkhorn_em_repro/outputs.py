"""Every file the pipeline writes, declared once: paths, table column types, figures, claims.

The rule files (``workflow/rules/*.smk``), the scripts, the plotting functions and the
report all take their paths from here; none spells a results path of its own.

* :class:`Table` - a CSV file (or a Snakemake pattern of many), with the types of the
  columns that CSV type guessing would get wrong: labels that look like booleans or
  numbers (the osmFISH weight setting ``"true"``, a ``minima`` cell holding one number)
  and flags. :func:`sinkhorn_em_repro.pipeline.read_table` applies them, so a table read
  back has the types it was written with.
* :class:`Figure` - a figure (PDF and PNG) with its report category, what it shows and
  the claims of the report it supports.
* :data:`CLAIM_TABLES` - the tables each claim of ``results/REPORT.md`` is computed from.
  The report rule takes its inputs from it, and the report its evidence.

A family declares its files in one block below (intermediate tables under
``results/<family>/``, final tables under ``results/tables/``, figures under
``results/figures/``); :func:`final_outputs` lists what its rule file promises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = [
    "BENCHMARKS",
    "CLAIM_TABLES",
    "FIGURES",
    "FIGURES_DIR",
    "LOGS",
    "REPORT_MD",
    "RESOURCES",
    "RESULTS",
    "TABLES",
    "TABLES_DIR",
    "Figure",
    "Table",
    "benchmark",
    "claim_figures",
    "figure",
    "final_outputs",
    "final_table",
    "flags",
    "labels",
    "log",
    "pattern_regex",
    "table",
    "table_at",
]

RESULTS = "results"
TABLES_DIR = f"{RESULTS}/tables"
FIGURES_DIR = f"{RESULTS}/figures"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
REPORT_MD = f"{RESULTS}/REPORT.md"
#: Downloaded datasets (outside results/: ``make clean-results`` keeps them).
RESOURCES = "resources"

#: Column types of :attr:`Table.dtypes`.
LABEL = "str"
FLAG = "bool"


def log(family: str, name: str) -> str:
    """The log file of a job: ``results/logs/<family>/<name>.log`` (``name`` may hold wildcards)."""
    return f"{LOGS}/{family}/{name}.log"


def benchmark(family: str, name: str) -> str:
    """The benchmark file of a job: ``results/benchmarks/<family>/<name>.tsv``."""
    return f"{BENCHMARKS}/{family}/{name}.tsv"


@dataclass(frozen=True)
class Table:
    """A CSV table the pipeline writes.

    Attributes
    ----------
    family : str
        The family whose rules write it.
    path : str
        Its path, or a Snakemake pattern with ``{wildcards}`` for one file per job.
    dtypes : mapping
        Column -> pandas dtype for the columns that CSV type guessing gets wrong
        (:data:`LABEL` for labels, :data:`FLAG` for booleans); the others are numbers
        or text either way.
    final : bool
        Part of what the family promises (``rule all``), as every table under
        ``results/tables/`` is.
    """

    family: str
    path: str
    dtypes: Mapping[str, str] = field(default_factory=dict)
    final: bool = False

    @property
    def name(self) -> str:
        """The file stem, e.g. ``"osmfish_seeds"``."""
        return Path(self.path).stem

    def format(self, **wildcards) -> str:
        """The path of one file of a pattern."""
        return self.path.format(**wildcards)

    def read(self, path: str | Path | None = None) -> pd.DataFrame:
        """Read the table (or the file ``path`` of its pattern) with the declared column types."""
        return pd.read_csv(self.path if path is None else path, dtype=dict(self.dtypes))


@dataclass(frozen=True)
class Figure:
    """A figure of the pipeline: ``results/figures/<stem>.pdf`` and ``.png``.

    Attributes
    ----------
    family : str
    stem : str
        File stem; the caption of the HTML report is ``workflow/report/<stem>.rst``.
    category : str
        Category of the HTML report (``snakemake --report``).
    shows : str
        One line for the figure list of ``results/REPORT.md``.
    claims : tuple of int
        Claims of the report the figure shows evidence for.
    png_in_report : bool
        Whether the PNG is registered in the HTML report beside the PDF.
    """

    family: str
    stem: str
    category: str
    shows: str
    claims: tuple[int, ...] = ()
    png_in_report: bool = False

    @property
    def pdf(self) -> str:
        return f"{FIGURES_DIR}/{self.stem}.pdf"

    @property
    def png(self) -> str:
        return f"{FIGURES_DIR}/{self.stem}.png"


def labels(*columns: str) -> dict[str, str]:
    """Column types of :class:`Table` for label columns (read back as strings)."""
    return dict.fromkeys(columns, LABEL)


def flags(*columns: str) -> dict[str, str]:
    """Column types of :class:`Table` for flag columns (read back as booleans)."""
    return dict.fromkeys(columns, FLAG)


def final_table(family: str, name: str, dtypes: Mapping[str, str] | None = None) -> Table:
    """A final table of ``family``: ``results/tables/<name>.csv``."""
    return Table(family, f"{TABLES_DIR}/{name}.csv", dict(dtypes or {}), final=True)


# ------------------------------------------------------------------------------- synthetic
_MANIFEST_COLUMNS = labels("name", "kind", "weight_scheme", "weights", "empirical_weights", "x_sha256")
#: Arrays of one benchmark dataset (NPZ).
SYNTHETIC_DATASET = f"{RESULTS}/synthetic/{{name}}.npz"
SYNTHETIC_MANIFEST_ROW = Table("synthetic", f"{RESULTS}/synthetic/manifest/{{name}}.csv", _MANIFEST_COLUMNS)
SYNTHETIC_MANIFEST = Table("synthetic", f"{RESULTS}/synthetic/manifest.csv", _MANIFEST_COLUMNS, final=True)

# ------------------------------------------------------------------------------- landscape
LANDSCAPE_CURVE = Table("landscape", f"{RESULTS}/landscape/curves/alpha{{alpha}}.csv")
LANDSCAPE_GRID_2D = Table("landscape", f"{RESULTS}/landscape/grid_2d.csv")
LANDSCAPE_CURVES = final_table("landscape", "landscape_curves")
LANDSCAPE_MINIMA = final_table(
    "landscape", "landscape_minima", {**labels("loss", "minima"), **flags("global_minimizers_agree")}
)
LANDSCAPE_2D_STATIONARY = final_table(
    "landscape", "landscape_2d_stationary", {**labels("loss", "kind"), **flags("spurious")}
)

# ------------------------------------------------------------------------------- fig2
_FIG2_COLUMNS = labels("method", "estep")
FIG2_CHUNK = Table("fig2", f"{RESULTS}/fig2/runs_chunk{{chunk}}.csv", _FIG2_COLUMNS)
FIG2_RUNS = final_table("fig2", "fig2_runs", _FIG2_COLUMNS)
FIG2_ESTEP_CHECK = final_table("fig2", "fig2_estep_check")

# ------------------------------------------------------------------------------- convergence
CONVERGENCE_TRAJECTORIES = Table("convergence", f"{RESULTS}/convergence/symmetric_trajectories.csv", labels("method"))
CONVERGENCE_RATES = final_table("convergence", "convergence_rates", labels("method", "rate_basis"))
CONVERGENCE_GENERAL_K = final_table("convergence", "convergence_general_k", labels("method"))
CONVERGENCE_GENERAL_K_RATES = final_table("convergence", "convergence_general_k_rates", labels("method", "rate_basis"))

# ------------------------------------------------------------------------------- sweeps
_SWEEP_RUN_COLUMNS = {
    **labels("weights", "init", "pairing", "method", "schedule"),
    **flags("collapsed_success", "success", "success_own", "converged"),
}
_SWEEP_COLUMNS = labels("weights", "init", "pairing", "method", "schedule")
#: ``{sweep}`` is ``init`` or ``epsilon``; ``{job}`` a key of the sweep's job plan.
SWEEP_CHUNK = Table("sweeps", f"{RESULTS}/sweeps/{{sweep}}/runs/{{job}}.csv", _SWEEP_RUN_COLUMNS)
SWEEP_RUNS = Table("sweeps", f"{RESULTS}/sweeps/{{sweep}}/runs.csv", _SWEEP_RUN_COLUMNS)
SWEEP_TABLE = Table("sweeps", f"{TABLES_DIR}/{{sweep}}_sweep.csv", _SWEEP_COLUMNS)
INIT_SWEEP = final_table("sweeps", "init_sweep", _SWEEP_COLUMNS)
EPSILON_SWEEP = final_table("sweeps", "epsilon_sweep", _SWEEP_COLUMNS)
#: Per start of the init sweep, every method's success and error (the pairs of claim 5's paired test).
INIT_SWEEP_PAIRS = final_table(
    "sweeps",
    "init_sweep_pairs",
    {**labels("weights", "init", "pairing"), **flags("success_vEM", "success_oEM", "success_sEM")},
)

# ------------------------------------------------------------------------------- C. elegans
CELEGANS_FIT = Table(
    "celegans",
    f"{RESULTS}/celegans/runs/{{dataset}}/{{method}}/chunk{{chunk}}.csv",
    labels("dataset", "init", "method"),
)
#: One job of the authors' protocol variant (experiments.celegans.authors).
CELEGANS_AUTHORS_FIT = Table(
    "celegans",
    f"{RESULTS}/celegans/authors/{{dataset}}/{{method}}/chunk{{chunk}}.csv",
    labels("dataset", "init", "method", "protocol"),
)
_CELEGANS_SUMMARY_COLUMNS = labels("dataset", "pool", "init", "method", "metric", "protocol")
CELEGANS_PER_ITERATION = Table("celegans", f"{RESULTS}/celegans/celegans_per_iteration.csv", _CELEGANS_SUMMARY_COLUMNS)
CELEGANS_SEGMENTATION = Table(
    "celegans", f"{RESULTS}/celegans/segmentation.csv", labels("dataset", "init", "method", "split", "truth_name")
)
CELEGANS = final_table("celegans", "celegans", _CELEGANS_SUMMARY_COLUMNS)
#: Every metric of every trial at the last iterate (the pairs of claim 6's paired tests).
CELEGANS_TRIALS = final_table(
    "celegans", "celegans_trials", labels("protocol", "dataset", "pool", "init", "method", "metric")
)

# ------------------------------------------------------------------------------- osmFISH
_OSMFISH_SETTING = labels("target", "features", "weights", "method")
_OSMFISH_SEED_COLUMNS = {**_OSMFISH_SETTING, **flags("converged", "sinkhorn_converged")}
#: Features of the valid cells for one feature set (NPZ).
OSMFISH_FEATURES = f"{RESULTS}/osmfish/features_{{features}}.npz"
OSMFISH_FIT = Table(
    "osmfish",
    f"{RESULTS}/osmfish/fits/{{target}}/{{features}}/{{weights}}/{{method}}/chunk{{chunk}}.csv",
    _OSMFISH_SEED_COLUMNS,
)
OSMFISH_MAP = Table(
    "osmfish",
    f"{RESULTS}/osmfish/map.csv",
    labels("features", "truth", "vEM", "oEM", "sEM", "sklearn"),
)
OSMFISH_SEEDS = final_table("osmfish", "osmfish_seeds", _OSMFISH_SEED_COLUMNS)
OSMFISH = final_table("osmfish", "osmfish", _OSMFISH_SETTING)
OSMFISH_CROSSCHECK = final_table("osmfish", "osmfish_crosscheck", labels("target", "features"))

# ------------------------------------------------------------------------------- spatial domains
# Study "dlpfc" (the DLPFC Visium slices) and study "mob" (the mouse olfactory bulb, sample mOB).
_SPATIAL_SETTING = labels("slice", "features", "covariance_type", "weights", "method", "start")
_SPATIAL_SEED_COLUMNS = {**_SPATIAL_SETTING, **flags("converged", "sinkhorn_converged")}
#: Features of one sample for one feature set (NPZ).
SPATIAL_FEATURES = f"{RESULTS}/dlpfc/{{sample}}/features_{{features}}.npz"
SPATIAL_FIT = Table(
    "dlpfc",
    f"{RESULTS}/dlpfc/{{sample}}/fits/{{features}}/{{covariance}}/{{weights}}/{{method}}/chunk{{chunk}}.csv",
    _SPATIAL_SEED_COLUMNS,
)
#: Inputs and outputs of R's mclust for one sample and feature set (only with ``dlpfc: mclust: enabled``).
SPATIAL_MCLUST_DIR = f"{RESULTS}/dlpfc/{{sample}}/mclust/{{features}}"
SPATIAL_MCLUST_SCORED = Table("dlpfc", f"{SPATIAL_MCLUST_DIR}/scored.csv", _SPATIAL_SEED_COLUMNS)
#: The hc partitions of one sample and feature set (seed_index, seed, spot, label; ``dlpfc: starts`` has hc).
SPATIAL_HC = Table("dlpfc", f"{RESULTS}/dlpfc/{{sample}}/hc_{{features}}.csv")
SPATIAL_MAP = Table("dlpfc", f"{RESULTS}/dlpfc/{{study}}_map.csv", labels("slice", "method", "label"))
DLPFC_SEEDS = final_table("dlpfc", "dlpfc", _SPATIAL_SEED_COLUMNS)
DLPFC_SUMMARY = final_table("dlpfc", "dlpfc_summary", _SPATIAL_SETTING)
MOB_SEEDS = final_table("dlpfc", "mob", _SPATIAL_SEED_COLUMNS)
MOB_SUMMARY = final_table("dlpfc", "mob_summary", _SPATIAL_SETTING)

# ------------------------------------------------------------------------------- report
IDENTITIES = final_table(
    "report", "identities", {**labels("check", "identity", "description", "criterion"), **flags("passed")}
)
#: One row per claim (or claim part) of the report: source, criterion, test, effect, verdict, scale.
VERDICTS = final_table(
    "report",
    "verdicts",
    labels("claim", "title", "source", "criterion", "test", "effect", "comparisons", "verdict", "scale"),
)

#: Every declared table, in the order of the families above.
TABLES: tuple[Table, ...] = tuple(value for value in dict(globals()).values() if isinstance(value, Table))

#: Every figure, in the order of the report's figure list.
FIGURES: tuple[Figure, ...] = (
    Figure(
        "landscape",
        "landscape",
        "Landscape",
        "NLL and EOT loss of the symmetric model, one panel per alpha*",
        (1, 2),
        png_in_report=True,
    ),
    Figure(
        "landscape",
        "landscape_2d",
        "Landscape",
        "NLL and EOT loss over two free means, stationary points marked",
        (1, 2),
        png_in_report=True,
    ),
    Figure(
        "fig2",
        "fig2",
        "Figure 2",
        "Figure 2 of Mena et al. (2020): errors, final theta, iterations (vEM, oEM, sEM)",
        (3,),
    ),
    Figure(
        "convergence",
        "convergence_rates",
        "Convergence rates",
        "error against iteration, linear rates (symmetric model and K = 3)",
        (4,),
    ),
    Figure("sweeps", "init_success", "Sweeps", "success fraction over random initialisations vs separation", (5,)),
    Figure("sweeps", "epsilon", "Sweeps", "constant epsilon and annealing: success, bias, iterations"),
    Figure("celegans", "celegans_metrics", "C. elegans", "neuron identification metrics vs iteration and time", (6,)),
    Figure(
        "celegans",
        "celegans_segmentation",
        "C. elegans",
        "voxels coloured by true neuron and by each method's assignment",
        (6,),
    ),
    Figure("osmfish", "osmfish_ari", "osmFISH", "ARI per seed, method and weight setting (osmFISH)", (7,)),
    Figure(
        "osmfish", "osmfish_map", "osmFISH", "osmFISH cells coloured by region and by each method's clustering", (7,)
    ),
    Figure(
        "dlpfc",
        "dlpfc_ari",
        "Spatial domains",
        "ARI per seed, method, weights, features and covariance (DLPFC Visium slices)",
        (9,),
    ),
    Figure(
        "dlpfc",
        "dlpfc_map",
        "Spatial domains",
        "DLPFC spots coloured by manual layer and by each method's best-likelihood fit",
        (9,),
    ),
    Figure("dlpfc", "mob_ari", "Spatial domains", "ARI per seed, method and weights (mouse olfactory bulb)"),
    Figure(
        "dlpfc",
        "mob_map",
        "Spatial domains",
        "olfactory bulb spots coloured by layer and by each method's best-likelihood fit",
    ),
)

#: Claim of the report -> names of the final tables its verdict is computed from.
CLAIM_TABLES: dict[int, tuple[str, ...]] = {
    1: ("landscape_minima", "landscape_2d_stationary"),
    2: ("landscape_minima", "landscape_2d_stationary"),
    3: ("fig2_runs",),
    4: ("convergence_rates", "convergence_general_k_rates"),
    5: ("init_sweep", "init_sweep_pairs"),
    6: ("celegans", "celegans_trials"),
    7: ("osmfish", "osmfish_seeds"),
    8: ("identities", "landscape_minima"),
    9: ("dlpfc",),
}


def table(name: str) -> Table:
    """The final table ``results/tables/<name>.csv``."""
    for candidate in TABLES:
        if candidate.final and candidate.path == f"{TABLES_DIR}/{name}.csv":
            return candidate
    raise KeyError(f"no final table {name!r} is declared in sinkhorn_em_repro.outputs; declare it there.")


def figure(stem: str) -> Figure:
    """The figure ``results/figures/<stem>.pdf``."""
    for candidate in FIGURES:
        if candidate.stem == stem:
            return candidate
    raise KeyError(f"no figure {stem!r} is declared in sinkhorn_em_repro.outputs; declare it there.")


def claim_figures(claim_id: int) -> list[str]:
    """PDF paths of the figures that show the evidence of a claim."""
    return [each.pdf for each in FIGURES if claim_id in each.claims]


def final_outputs(family: str) -> list[str]:
    """What a family's rule file promises: its final tables, then the PDF and PNG of its figures."""
    tables = [each.path for each in TABLES if each.family == family and each.final]
    figures = [path for each in FIGURES if each.family == family for path in (each.pdf, each.png)]
    return tables + figures


def pattern_regex(pattern: str) -> re.Pattern:
    """Regex of the paths of a Snakemake pattern ``a/{x}/b_{y,[0-9]+}.tsv``.

    A wildcard with a constraint matches the constraint, one without matches any
    non-empty text (``/`` included, as Snakemake's default does).
    """
    parts, position = [], 0
    for match in re.finditer(r"\{([^{}]+)\}", pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        _, _, constraint = match.group(1).partition(",")
        parts.append(f"(?:{constraint})" if constraint else ".+")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts) + r"\Z")


# Matched on the end of a path, so that results/... under any working directory is found.
_TABLE_REGEX = [(re.compile(r"(?:\A|/)" + pattern_regex(each.path).pattern), each) for each in TABLES]


def table_at(path: str | Path) -> Table | None:
    """The declared table that ``path`` is a file of (matched on its trailing ``results/...`` part), or None."""
    text = Path(path).as_posix()
    for regex, candidate in _TABLE_REGEX:
        if regex.search(text):
            return candidate
    return None
