# Helpers shared by every rule file. Each family appends the figures and tables
# it promises to FINAL_OUTPUTS; `rule all` (Snakefile) requests them all.

FINAL_OUTPUTS = []

RESULTS = "results"
FIGURES = f"{RESULTS}/figures"
TABLES = f"{RESULTS}/tables"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"


def section(name):
    """The validated config section `name` (defaults filled by the schema)."""
    return config[name]
