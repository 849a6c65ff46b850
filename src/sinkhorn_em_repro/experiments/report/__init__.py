r"""The reproduction report: each claim of the papers, its measured numbers and a computed verdict.

Every verdict is a function of the result tables and of the thresholds of the ``report``
config section, never written by hand. A claim function takes the tables it needs and
returns a :class:`Claim` (statement, evidence, criterion text, measured numbers, verdict);
:func:`render_report` turns the claims, the software versions, the config hash and the
cost of every rule into ``results/REPORT.md``.

Each entry names its source (:attr:`Claim.source`: the paper and the part of it that could
be read here, or "this project's own test"). Claims get one of :data:`VERDICTS`:

``reproduced``
    every sub-check of the criterion holds;
``partially reproduced``
    some sub-checks hold and others fail, or the evidence is mixed;
``not reproduced``
    the criterion fails: the data do not support the claim (the numbers are shown);
``contradicted``
    the data point the other way (significant losses in at least a quarter of the
    comparisons, outnumbering the gains);
``inconclusive``
    the tables hold no usable evidence (no testable comparison).

The rules over a comparison claim's counts are :data:`GRADE_DEFINITIONS`.

Statements that hold by theorem (:math:`L_{EOT} \ge NLL`, the identities of entry 8) are
*implementation checks* (:data:`IMPLEMENTATION_CHECK`), reported as ``passed`` or
``failed`` in a section of their own: a failure is a bug, not a finding.

Comparisons "Sinkhorn-EM is better than a baseline" (claims 5-7 and 9) share one rule:
every pre-declared comparison is counted once with a two-sided p-value (paired tests where
the methods share starts, trials or seeds: :mod:`sinkhorn_em_repro.paired`),
:func:`classify_comparisons` applies Holm's correction over the claim's comparisons, and
:func:`superiority_verdict` asks for significant gains in a majority of them and no
significant loss.

Modules: :mod:`.verdicts` (the Claim record and the shared verdict rules),
:mod:`.model_claims` (claims 1-4, check 8), :mod:`.comparison_claims` (claims 5-7, 9),
:mod:`.provenance` (config hash, versions, rule costs), :mod:`.summary` (the one-glance
table of verdicts at both scales), :mod:`.markdown` and :mod:`.build`
(all claims from the tables; the report of a finished run). Which tables each claim
reads and which figures show it are declared in :mod:`sinkhorn_em_repro.outputs`
(``CLAIM_TABLES``, ``Figure.claims``).
"""

from sinkhorn_em_repro.experiments.report.build import build_claims, report_text
from sinkhorn_em_repro.experiments.report.comparison_claims import (
    AUTHORS_PROTOCOL,
    PAIRINGS,
    claim_celegans,
    claim_osmfish,
    claim_restarts,
    claim_spatial_domains,
    claims_restarts,
    restarts_needed,
)
from sinkhorn_em_repro.experiments.report.markdown import figure_rows, markdown_table, render_report
from sinkhorn_em_repro.experiments.report.model_claims import (
    claim_convergence_rates,
    claim_fewer_spurious_minima,
    claim_fig2,
    claim_identities,
    claim_shared_optimum,
)
from sinkhorn_em_repro.experiments.report.provenance import (
    PROVENANCE_ONLY_KEYS,
    config_hash,
    result_config,
    rule_costs,
    software_versions,
)
from sinkhorn_em_repro.experiments.report.summary import SCALES, VERDICT_COLUMNS, side_by_side, verdict_records
from sinkhorn_em_repro.experiments.report.verdicts import (
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_RESULTS,
    CLAIM,
    CONTRADICTED,
    GRADE_DEFINITIONS,
    IMPLEMENTATION_CHECK,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    OWN_TEST,
    PARTIAL,
    REPRODUCED,
    SUPERIORITY_RULE,
    VERDICTS,
    Claim,
    classify_comparisons,
    combine_verdicts,
    fisher_p_value,
    grade,
    holm_adjusted,
    paired_p_value,
    require_columns,
    require_flags,
    superiority_rule,
    superiority_verdict,
    welch_p_value,
)

__all__ = [
    "AUTHORS_PROTOCOL",
    "CHECK_FAILED",
    "CHECK_PASSED",
    "CHECK_RESULTS",
    "CLAIM",
    "CONTRADICTED",
    "GRADE_DEFINITIONS",
    "IMPLEMENTATION_CHECK",
    "INCONCLUSIVE",
    "NOT_REPRODUCED",
    "OWN_TEST",
    "PAIRINGS",
    "PARTIAL",
    "PROVENANCE_ONLY_KEYS",
    "REPRODUCED",
    "SCALES",
    "SUPERIORITY_RULE",
    "VERDICTS",
    "VERDICT_COLUMNS",
    "Claim",
    "build_claims",
    "claim_celegans",
    "claim_convergence_rates",
    "claim_fewer_spurious_minima",
    "claim_fig2",
    "claim_identities",
    "claim_osmfish",
    "claim_restarts",
    "claim_shared_optimum",
    "claim_spatial_domains",
    "claims_restarts",
    "classify_comparisons",
    "combine_verdicts",
    "config_hash",
    "figure_rows",
    "fisher_p_value",
    "grade",
    "holm_adjusted",
    "markdown_table",
    "paired_p_value",
    "render_report",
    "report_text",
    "require_columns",
    "require_flags",
    "restarts_needed",
    "result_config",
    "rule_costs",
    "side_by_side",
    "software_versions",
    "superiority_rule",
    "superiority_verdict",
    "verdict_records",
    "welch_p_value",
]
