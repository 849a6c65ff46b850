# Helpers shared by every rule file. Every path comes from sinkhorn_em_repro.outputs, the one
# declaration of the results that the scripts, the plotting functions and the report read too.
# Each family appends what it promises (out.final_outputs(family)) to FINAL_OUTPUTS; the `all`
# target (Snakefile) requests them all, and the pipeline tests read that list back from the
# workflow to check that every promised file exists and is non-empty after a run.
from sinkhorn_em_repro import outputs as out

FINAL_OUTPUTS = []

# `snakemake --lint` (a test) also rejects a rule file that defines both rules and
# Python functions (`def`): put a family's helper functions in its package module
# (sinkhorn_em_repro.experiments.<family>) and call them from the rule file.

# Software environment of every job, for `--sdm conda`; the Snakefile gives it to every
# rule that runs something, so rules do not repeat it. Conda paths are resolved relative to
# the file that defines the rule, and every family's rules live in workflow/rules/.
CONDA_ENV = "../../envs/sinkhorn-em.yaml"


def section(name):
    """The validated config section `name` (defaults filled by the schema)."""
    return config[name]


def figure_outputs(stem):
    """`pdf=` and `png=` outputs of a declared figure, registered in the HTML report with its caption."""
    figure = out.figure(stem)

    def registered(path):
        return report(
            path, caption=f"../report/{figure.stem}.rst", category=figure.category
        )

    png = registered(figure.png) if figure.png_in_report else figure.png
    return {"pdf": registered(figure.pdf), "png": png}
