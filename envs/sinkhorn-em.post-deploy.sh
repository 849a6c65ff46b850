#!/usr/bin/env bash
# Snakemake runs this once, inside the freshly created conda environment of
# sinkhorn-em.yaml, from its working directory. Jobs import sinkhorn_em, which is
# not on conda-forge: install this checkout into the environment. Editable, so a
# change to src/ reaches the jobs without rebuilding the environment; no
# dependencies, because conda already provided all of them.
set -euo pipefail

if ! grep -qs '^name = "sinkhorn-em"' pyproject.toml; then
    echo "sinkhorn-em post-deploy: $(pwd) is not the sinkhorn-em repository root;" \
         "run snakemake --sdm conda from the root of the checkout." >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation --editable .
