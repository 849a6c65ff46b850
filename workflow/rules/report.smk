# Rules of the report family (issue 8): results/REPORT.md, every claim of the papers next to
# its measured numbers and a verdict computed from the tables (sinkhorn_em_repro.experiments.report).
#
#   report_identities  claim 8's numerical checks -> results/tables/identities.csv
#   report_build       every final output of every family -> results/REPORT.md
#
# This file is included last, so FINAL_OUTPUTS already lists every family's figures and
# tables: the report depends on all of them and is therefore the last job of `all`.
# Benchmark files are produced by many rules with wildcards; rather than listing them as
# inputs, the report globs results/benchmarks/ and results/logs/ when it runs (everything
# upstream has finished by then) and maps each file to its rule through the benchmark:/log:
# patterns of workflow.rules. Rules without benchmark: are timed from the wall time that
# sinkhorn_em_repro.pipeline.snakemake_job writes at the end of their log, or not listed at all.
from sinkhorn_em_repro.experiments.report import config_hash

REPORT = section("report")
REPORT_UPSTREAM = list(
    FINAL_OUTPUTS
)  # a copy: the report's own outputs are appended below
REPORT_TABLES = {
    name: f"{TABLES}/{name}.csv"
    for name in (
        "landscape_minima",
        "landscape_2d_stationary",
        "fig2_runs",
        "convergence_rates",
        "convergence_general_k_rates",
        "init_sweep",
        "celegans",
        "osmfish",
        "dlpfc",
    )
}


rule report_identities:
    output:
        f"{TABLES}/identities.csv",
    log:
        f"{LOGS}/report/identities.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        cfg=dict(seed=config["seed"], **REPORT["identities"]),
    script:
        "../scripts/report_identities.py"


# Local: a second of reading files, not worth a cluster submission.
rule report_build:
    input:
        **REPORT_TABLES,
        identities=f"{TABLES}/identities.csv",
        upstream=REPORT_UPSTREAM,
    output:
        report(
            f"{RESULTS}/REPORT.md",
            caption="../report/reproduction_report.rst",
            category="Reproduction report",
        ),
    log:
        f"{LOGS}/report/build.log",
    localrule: True
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
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
        # benchmark:/log: path patterns of every rule, to attribute timing files to rules.
        rule_files=lambda wildcards: {
            each.name: {
                "benchmark": str(each.benchmark) if each.benchmark else None,
                "log": [str(log) for log in each.log],
            }
            for each in workflow.rules
        },
        final_outputs=REPORT_UPSTREAM,
    script:
        "../scripts/report_build.py"


FINAL_OUTPUTS += [f"{TABLES}/identities.csv", f"{RESULTS}/REPORT.md"]
