# Rules of the report family: results/REPORT.md, every claim of the papers next to
# its measured numbers and a verdict computed from the tables (sinkhorn_em_repro.experiments.report).
#
#   report_identities  implementation check 8 (theorems: identities) -> results/tables/identities.csv
#   report_build       every final output of every family -> results/REPORT.md and
#                      results/tables/verdicts.csv (one row per claim: test, effect, verdict)
#
# This file is included last, so FINAL_OUTPUTS already lists every family's figures and
# tables: the report depends on all of them and is therefore the last job of `all`.
# Benchmark files are produced by many rules with wildcards; rather than listing them as
# inputs, the report globs results/benchmarks/ and results/logs/ when it runs (everything
# upstream has finished by then) and maps each file to its rule through the benchmark:/log:
# patterns of workflow.rules. Rules without benchmark: are timed from the wall time that
# sinkhorn_em_repro.pipeline.snakemake_job writes at the end of their log, or not listed at all.
from sinkhorn_em_repro.experiments.report import config_hash
from sinkhorn_em_repro.experiments.report.scale import family_scales

REPORT = section("report")
# A copy: the report's own outputs are appended below.
REPORT_UPSTREAM = list(FINAL_OUTPUTS)
# Every table a claim is computed from, named as in sinkhorn_em_repro.outputs.CLAIM_TABLES.
REPORT_TABLES = {
    name: out.table(name).path for names in out.CLAIM_TABLES.values() for name in names
}


rule report_identities:
    output:
        out.IDENTITIES.path,
    log:
        out.log("report", "identities"),
    params:
        cfg=dict(seed=config["seed"], **REPORT["identities"]),
    script:
        "../scripts/report_identities.py"


# Local: a second of reading files, not worth a cluster submission.
rule report_build:
    input:
        **REPORT_TABLES,
        **(
            {"other_verdicts": REPORT["other_verdicts"]}
            if REPORT["other_verdicts"]
            else {}
        ),
        upstream=REPORT_UPSTREAM,
        # verdicts.csv of a run at the other scale, for the side-by-side table (optional).
    output:
        report=report(
            out.REPORT_MD,
            caption="../report/reproduction_report.rst",
            category="Reproduction report",
        ),
        verdicts=out.VERDICTS.path,
    log:
        out.log("report", "build"),
    localrule: True
    params:
        # Claim 9 (spatial domains) takes its criterion from the dlpfc section.
        criteria={
            **REPORT,
            "dlpfc": {**DLPFC["claim"], "confidence": DLPFC["confidence"]},
        },
        fig2={
            "theta0": config["fig2"]["panel_theta0"],
            "panel_alphas": list(config["fig2"]["panel_alphas"]),
        },
        # Hash of the validated config without the dataset mirror and timeout: switching
        # mirrors changes no result and must not rerun the report; any other change does.
        config_sha256=config_hash(config),
        seed=config["seed"],
        # Samples, trials, datasets, initialisations and seeds of every family, for each verdict.
        scales=family_scales(config),
        # benchmark:/log: path patterns of every rule, to attribute timing files to rules.
        rule_files=lambda wildcards: {
            each.name: {
                "benchmark": str(each.benchmark) if each.benchmark else None,
                "log": [str(log) for log in each.log],
            }
            for each in workflow.rules
        },
    script:
        "../scripts/report_build.py"


FINAL_OUTPUTS += [*out.final_outputs("report"), out.REPORT_MD]
