# Entry points of the README quick start, on a fresh machine with Python >= 3.11:
#
#   make reproduce CORES=4    create .venv, install, build every figure and table
#   make test                 create .venv, install, run the whole test suite
#
# Both reuse .venv when it exists and reinstall only when pyproject.toml changed.
# Variables: CORES (default: all), MIRROR (a local copy of the datasets, instead of
# downloading them), SNAKEMAKE_ARGS (extra snakemake options), PYTEST_ARGS,
# TEST_WORKERS (pytest-xdist workers, default 2; 0 runs the tests in one process),
# PYTHON (interpreter that creates the venv, default python3).

PYTHON ?= python3
VENV ?= .venv
CORES ?= all
MIRROR ?=
SNAKEMAKE_ARGS ?=
# Two workers even on a 2-core machine: the Slurm and pipeline tests spend most of their time
# waiting (Slurm polling, job start-ups), which the other worker fills. loadgroup keeps each
# xdist_group (the Slurm tests, say) on one worker; the tiny runs are shared across workers.
TEST_WORKERS ?= 2
PYTEST_ARGS ?= -ra --durations=15 -n $(TEST_WORKERS) --dist loadgroup

BIN := $(VENV)/bin
# Marks an install of the current pyproject.toml into the venv.
INSTALLED := $(VENV)/.installed
SNAKEMAKE := $(BIN)/snakemake --workflow-profile workflow/profiles/default
MIRROR_CONFIG := $(if $(MIRROR),--config 'datasets={mirror: $(abspath $(MIRROR))}')

.DEFAULT_GOAL := help
.PHONY: help install reproduce report test test-library test-fast lint dry-run config-docs clean-results

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "sinkhorn-em needs Python >= 3.11; run e.g. make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install --editable '.[reproduce,test,cluster,dask]'
	touch $@

install: $(INSTALLED)  ## create .venv and install the package with the reproduce, test, cluster and dask extras

reproduce: $(INSTALLED)  ## run the full pipeline (CORES=N, MIRROR=dir), then the HTML report; resumes an interrupted run
	PYTHONPATH="$(CURDIR)/src$${PYTHONPATH:+:$$PYTHONPATH}" $(BIN)/python -m sinkhorn_em_repro.locks $(MIRROR_CONFIG) $(SNAKEMAKE_ARGS)
	$(SNAKEMAKE) --cores $(CORES) $(MIRROR_CONFIG) $(SNAKEMAKE_ARGS)
	$(REPORT)

# Run in the recipe, not as `$(MAKE) report`: a sub-make would not inherit `-o $(INSTALLED)`
# (make keeps -o out of MAKEFLAGS) and could reinstall the venv from another tree.
REPORT = $(BIN)/snakemake --report results/report.html $(MIRROR_CONFIG) $(SNAKEMAKE_ARGS)
report: $(INSTALLED)  ## results/report.html from a finished run
	$(REPORT)

test: $(INSTALLED)  ## the whole test suite, pipeline runs included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-library: $(INSTALLED)  ## the library's half of the tests (tests/library: core install only, no pipeline)
	$(BIN)/python -m pytest tests/library $(PYTEST_ARGS)

test-fast: $(INSTALLED)  ## the test suite without the Snakemake runs
	$(BIN)/python -m pytest -m "not pipeline and not cluster" $(PYTEST_ARGS)

lint: $(INSTALLED)  ## ruff (lint + format check), snakefmt --check, snakemake --lint
	$(BIN)/ruff check src tests benchmarks workflow
	$(BIN)/ruff format --check src tests benchmarks workflow
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

dry-run: $(INSTALLED)  ## list the jobs of the default config without running them
	$(SNAKEMAKE) --dry-run --cores $(CORES) $(MIRROR_CONFIG) $(SNAKEMAKE_ARGS)

config-docs: $(INSTALLED)  ## regenerate the configuration reference docs/CONFIG.md from the schema
	$(BIN)/python tests/repro/test_schema_docs.py --write

clean-results:  ## delete results/ (but its README) and .snakemake/ metadata; keeps downloads
	find results -mindepth 1 -not -name README.md -delete
	rm -rf .snakemake
