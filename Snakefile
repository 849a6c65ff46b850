# sinkhorn-em: reproduction pipeline for Sinkhorn-EM (entropic optimal transport
# for Gaussian mixtures). `snakemake --cores N` builds every figure and table of
# the default config; see docs/REPRODUCTION.md and docs/ARCHITECTURE.md.
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# Parallelism comes from jobs; one BLAS thread per job keeps every table
# byte-identical whatever --cores is.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

# The reproduction package is not in the library's wheel: the rule files and every
# job import sinkhorn_em_repro (and sinkhorn_em) from this checkout's src/, first.
# Set here, not required of the caller (no `envvars:`): every job, local or on a
# cluster node, parses this Snakefile again and so sets it again.
_SRC = os.path.join(workflow.basedir, "src")
_SEARCH_PATH_VAR = "PYTHONPATH"
sys.path.insert(0, _SRC)
os.environ[_SEARCH_PATH_VAR] = os.pathsep.join(
    filter(None, [_SRC, os.environ.get(_SEARCH_PATH_VAR)])
)


configfile: "config.yaml"


# Validation also fills every default, so rules can index config sections
# without .get(); an invalid config stops here, before any job is scheduled.
validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/landscape.smk"
include: "workflow/rules/fig2.smk"
include: "workflow/rules/convergence.smk"
include: "workflow/rules/sweeps.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/applications.smk"
include: "workflow/rules/report.smk"


# Every job runs in the one environment of envs/ (used with `--sdm conda`): set here once,
# after every rule file is read, instead of a `conda:` line in each rule. A global `conda:`
# directive would not do: in Snakemake 9 it injects an environment into Snakemake's own
# process, not into the jobs, and `snakemake --lint` still asks every rule for one.
for _rule in workflow.rules:
    if _rule.conda_env is None and not _rule.norun:
        _rule.conda_env = CONDA_ENV


# `all` only gathers files: on a cluster it must not cost a job submission.
localrules:
    all,


rule all:
    default_target: True
    input:
        FINAL_OUTPUTS,
