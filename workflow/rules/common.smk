# Helpers shared by every rule file. Each family appends the figures and tables
# it promises to FINAL_OUTPUTS; the `all` target (Snakefile) requests them all,
# and the pipeline tests read that list back from the workflow to check that
# every promised file exists and is non-empty after a run.

FINAL_OUTPUTS = []

RESULTS = "results"
FIGURES = f"{RESULTS}/figures"
TABLES = f"{RESULTS}/tables"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"

# `snakemake --lint` (a test) also rejects a rule file that defines both rules and
# Python functions (`def`): put a family's helper functions in its package module
# (sinkhorn_em_repro.experiments.<family>) and call them from the rule file.

# Software environment of every job, for `--sdm conda`. Conda paths are resolved
# relative to the file that defines the rule, and every family's rules live in
# workflow/rules/, so one constant serves them all: write `conda: CONDA_ENV`.
# `snakemake --lint` requires it on each rule that has a script or shell command.
CONDA_ENV = "../../envs/sinkhorn-em.yaml"


def section(name):
    """The validated config section `name` (defaults filled by the schema)."""
    return config[name]
