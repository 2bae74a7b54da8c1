# dip-repro: the two commands of the README, and the helpers behind them.
#   make reproduce            set up .venv, fetch the data, run the whole DAG (PROFILE=quick by default)
#   make test                 unit tests, then the ci profile end to end (with the authors' code beside ours),
#                             then the regression gate
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
CORES ?= all
SNAKEMAKE_PROFILE ?= workflow/profiles/default
PY := $(VENV)/bin/python
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
# An offline mirror beside the checkout is used when present (see README, "Offline").
ifeq ($(origin DIP_DATA_MIRROR), undefined)
  ifneq ($(wildcard ../shared/data/table1),)
    export DIP_DATA_MIRROR := $(abspath ../shared/data)
  endif
endif

.PHONY: setup reproduce test lint-imports unit pipeline-ci report-ci regression baseline slurm-test lint clean-results

setup: $(VENV)/.installed

# torch is pinned (2.13.0) in pyproject.toml; on a machine with a local CPU wheel pip takes it from disk.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[pipeline,test]'
	touch $@

reproduce: setup
	$(BIN)/snakemake --cores $(CORES) --workflow-profile $(SNAKEMAKE_PROFILE) --config profile=$(PROFILE)
	@echo "results in results/$(PROFILE)/ (table1.md, figure7.png, metrics.csv)"

test: lint-imports unit pipeline-ci regression report-ci

# The layer contract of src/dip (pyproject.toml [tool.importlinter]; docs/architecture.md): no wing imports one above it.
lint-imports: setup
	$(BIN)/lint-imports

# Test files run in TEST_WORKERS processes (pytest-xdist, one file per worker at a time: a file's fixtures stay
# together); most tests wait on a one-thread fit in a subprocess, so two workers halve the time on two cores.
# TEST_WORKERS=0 runs them in this process, one after another.
TEST_WORKERS ?= 2
unit: setup
	tools/pytest-strict $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=15

# The ci profile runs the authors' code beside ours (reference=true), so CI keeps the reference engine working;
# the regression gate reads our fits only (results/ci/metrics.csv).
pipeline-ci: setup
	$(BIN)/snakemake --cores $(CORES) --workflow-profile $(SNAKEMAKE_PROFILE) --config profile=ci reference=true

# The HTML report of the ci run must contain the table and the figures, and open on what was reproduced (the
# paper, the profile, Table 1 as in table1.md with its verdicts, Figure 7: workflow/report/workflow.rst).
report-ci: setup
	$(BIN)/snakemake --report results/ci/report.html --config profile=ci reference=true
	@for f in table1.md table1.csv metrics.csv parity.csv figure7.png curves.png; do grep -q "$$f" results/ci/report.html || { echo "report.html lacks $$f"; exit 1; }; done
	@echo "results/ci/report.html: table and figures present"
	$(PY) -m dip.report.landing results/ci/report.html --profile ci --reference

regression: setup
	$(PY) -m dip gate --metrics results/ci/metrics.csv --config config/config.yaml

# Regenerate the regression baseline from a fresh ci run (commit the result with the command in the message).
baseline: setup
	rm -rf results/ci
	$(MAKE) pipeline-ci
	$(PY) -m dip gate --metrics results/ci/metrics.csv --config config/config.yaml --write-baseline

slurm-test: setup
	tools/pytest-strict $(PY) -m pytest -q -p no:cacheprovider -rs --durations=0 -m slurm tests/cluster

lint: setup
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results/$(PROFILE) .snakemake/incomplete
