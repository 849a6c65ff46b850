# Datasets family: every real dataset is fetched once into resources/<path> from its
# commit-pinned upstream URL (or copied from `datasets: mirror`) and kept only if its
# sha256 matches config.yaml. Other families take their inputs from dataset_path(key),
# e.g. dataset_path("sinkhornem_atlas") == "resources/celegans/sinkhornem_atlas.mat".
import functools
import re

from sinkhorn_em_repro.datasets.fetch import dataset_key_by_path, local_dataset_path

DATASET_FILES = section("datasets")["files"]
DATASET_KEY_BY_PATH = dataset_key_by_path(DATASET_FILES)
dataset_path = functools.partial(local_dataset_path, DATASET_FILES, root=out.RESOURCES)


rule fetch_dataset:
    output:
        f"{out.RESOURCES}/{{relpath}}",
    log:
        out.log("datasets", "{relpath}"),
    wildcard_constraints:
        # Only the configured paths: the rule must not claim other files under resources/.
        relpath="|".join(re.escape(path) for path in sorted(DATASET_KEY_BY_PATH))
        or "(?!)",
    localrule: True
    # The mirror and the timeout are read by the script from the config, not passed as
    # params: they do not change the (checksummed) bytes, so switching between upstream
    # and a mirror must not mark the datasets and everything downstream as outdated.
    params:
        url=lambda wildcards: DATASET_FILES[DATASET_KEY_BY_PATH[wildcards.relpath]][
            "url"
        ],
        sha256=lambda wildcards: DATASET_FILES[DATASET_KEY_BY_PATH[wildcards.relpath]][
            "sha256"
        ],
    script:
        "../scripts/fetch_dataset.py"


# Target to fetch and verify every configured dataset, e.g. before moving to an
# offline cluster: `snakemake --cores 1 fetch_datasets`.
rule fetch_datasets:
    input:
        [dataset_path(key) for key in DATASET_FILES],
    localrule: True


FINAL_OUTPUTS.extend(dataset_path(key) for key in DATASET_FILES)
