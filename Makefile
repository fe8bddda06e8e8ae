# lead-scoring: every target is non-interactive and idempotent (safe under cron:
#   make -C /path/to/repo retrain).
SHELL := /bin/bash
.DEFAULT_GOAL := help
REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3.11
VENV := $(REPO)/.venv
BIN := $(VENV)/bin
CLI := $(BIN)/lead-scoring
CONFIG ?= configs/demo.yaml
MODEL ?=
INPUT ?=
QUIET ?=
NAME := $(basename $(notdir $(CONFIG)))
# the demo data is written only for the demo config; any other config brings its own files
DATA := $(if $(filter configs/demo.yaml $(REPO)/configs/demo.yaml,$(CONFIG)),data,$(STAMP))
MODEL_OPT := $(if $(MODEL),--model $(MODEL))
Q := $(if $(QUIET),--quiet)
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export MLFLOW_ENABLE_ASYNC_LOGGING := false

.PHONY: help install data train retrain score export evaluate lift report drift bench test test-fast lint format clean clean-models

help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,spark]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv (Python 3.11) and install the project with its dev extras

data: $(STAMP) ## Write the demo data to data/raw/demo/ (skipped when present)
	cd $(REPO) && $(CLI) demo-data --out data/raw/demo --if-absent

train: $(DATA) ## Train on CONFIG's data (default: the demo), register a new version in models/, score its leads
	cd $(REPO) && $(CLI) $(Q) train --config $(CONFIG)

retrain: $(DATA) ## Same as train, under a lock so two cron runs never overlap
	cd $(REPO) && $(CLI) $(Q) train --config $(CONFIG) --lock

score: $(DATA) ## Score the config's leads with its champion -> data/processed/<config>/scored_leads.csv
	cd $(REPO) && $(CLI) $(Q) score --config $(CONFIG) --lock \
	  --output data/processed/$(NAME)/scored_leads.csv --rejects data/processed/$(NAME)/rejected_leads.csv

export: $(STAMP) ## Export the champion points table in every format to data/processed/<config>/exports/
	cd $(REPO) && $(CLI) $(Q) export --config $(CONFIG) --format all --output data/processed/$(NAME)/exports

evaluate: $(DATA) ## Cross-validate the whole procedure (5 folds) and print the figures
	cd $(REPO) && $(CLI) $(Q) evaluate --config $(CONFIG) --folds 5

lift: $(DATA) ## Attribute analysis: lift, associations and selection tables to data/processed/lift/<config>/
	cd $(REPO) && $(CLI) $(Q) lift --config $(CONFIG) --out data/processed/lift/$(NAME)

report: $(STAMP) ## The champion's (or MODEL=NAME/VERSION) report + screenshot -> data/processed/<config>/
	cd $(REPO) && $(CLI) $(Q) report --config $(CONFIG) $(MODEL_OPT) \
	  --output data/processed/$(NAME)/report.html \
	  --screenshot data/processed/$(NAME)/report_screenshot.png

drift: $(STAMP) ## PSI of INPUT=new_leads.csv against the training leads (exit 3: retrain advised)
	@test -n "$(INPUT)" || { echo "make drift: give the new batch, e.g. make drift INPUT=new_leads.csv CONFIG=$(CONFIG)" >&2; exit 2; }
	cd $(REPO) && $(CLI) $(Q) drift --config $(CONFIG) $(MODEL_OPT) --input $(INPUT) \
	  --out data/processed/$(NAME)/drift

bench: $(STAMP) ## Run the benchmarks; results in bench/results.json and bench/results.md
	cd $(REPO) && $(BIN)/python -m bench.run $(Q)

test: $(STAMP) ## Lint (ruff) and run the whole test suite (pytest, every marker)
	cd $(REPO) && $(BIN)/ruff check pipeline tests bench
	cd $(REPO) && $(BIN)/python -m pytest -q

FAST := not slow and not training and not spark and not server and not browser and not real_data

test-fast: $(STAMP) ## Unit and property tests: no server, Spark, browser or CLI training (< 2 min)
	cd $(REPO) && $(BIN)/python -m pytest -q -m "$(FAST)"

lint: $(STAMP) ## ruff check only
	cd $(REPO) && $(BIN)/ruff check pipeline tests bench

format: $(STAMP) ## ruff format + autofix
	cd $(REPO) && $(BIN)/ruff check --fix pipeline tests bench && $(BIN)/ruff format pipeline tests bench

clean: ## Remove generated data and caches (keeps .venv and the model store)
	rm -rf $(REPO)/data/interim/* $(REPO)/data/processed/* $(REPO)/data/raw/demo
	rm -rf $(REPO)/.pytest_cache $(REPO)/.ruff_cache $(REPO)/.hypothesis
	find $(REPO)/pipeline $(REPO)/tests -name __pycache__ -type d -prune -exec rm -rf {} +

clean-models: ## Remove the local MLflow store (every registered version!)
	rm -rf $(REPO)/models/mlflow.db $(REPO)/models/artifacts
