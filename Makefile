# tfpipe: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= pipelines/configs/digits.yaml
export TF_CPP_MIN_LOG_LEVEL ?= 2

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install tfpipe with pinned dependencies

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/pip check
	touch $@

data: setup ## write the bundled example data (digits PNGs, penguins CSV) into data/
	$(BIN)/tfpipe example-data --out data

run: data ## run the pipeline on the example data (CONFIG=pipelines/configs/digits.yaml)
	$(BIN)/tfpipe run --config $(CONFIG)

test: setup ## run the test suite
	$(BIN)/pytest -q

bench: setup ## run the benchmarks (they print ratios against a baseline run in the same process)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/serve.py

clean: ## remove runs/ and data/ (keeps .venv)
	rm -rf runs data

.PHONY: help setup data run test bench clean
