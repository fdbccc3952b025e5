# tfpipe: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= pipelines/configs/digits.yaml
OUT ?= pipeline.yaml
RUN ?= $(lastword $(sort $(wildcard runs/tfpipe-*)))
MODEL_BASE ?= runs/serving/digits
export TF_CPP_MIN_LOG_LEVEL ?= 2
# A docker client with BuildKit (Debian's docker.io has it built in; others need the buildx plugin).
DOCKER ?= docker
BASE_IMAGE ?= python:3.11-slim
IMAGE ?= tfpipe-components:latest
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
comma := ,
CA_SECRET = $(if $(wildcard $(CA_BUNDLE)),--secret id=ca$(comma)src=$(CA_BUNDLE))

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

test: setup host lint ## the whole suite, on 2 processes, with the 10 slowest tests listed (sets up the engine first)
	$(BIN)/pytest -q -n 2 --durations=10

test-fast: setup ## the edit loop: every module's quick tests, no containers or browser (under 2 minutes)
	$(BIN)/pytest -q -n 2 -m "not slow and not docker and not browser" --durations=5

host: ## what the whole suite needs besides the venv: Docker engine, images, Chromium (tests/setup-host.sh)
	tests/setup-host.sh

lint: setup ## ruff, configured in pyproject.toml
	$(BIN)/ruff check components pipelines tests benchmarks

compile: setup ## compile the pipeline to KFP IR YAML (CONFIG=..., OUT=pipeline.yaml)
	$(BIN)/tfpipe compile --config $(CONFIG) --out $(OUT)

tensorboard: setup ## TensorBoard on a run's logs (RUN=runs/<run>, default the newest)
	$(BIN)/tfpipe tensorboard $(RUN)

serve: setup ## serve a model base over REST and gRPC on 127.0.0.1 (MODEL_BASE=runs/serving/<name>)
	$(BIN)/tfpipe serve --model-base $(MODEL_BASE)

bench: setup ## run the benchmarks (they print ratios against a baseline run in the same process)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/serve_health.py
	$(BIN)/python benchmarks/validate.py
	$(BIN)/python benchmarks/warm_start.py
	$(BIN)/python benchmarks/evaluate.py

base-image: ## make tfpipe-base:bookworm with debootstrap and docker import (no registry needed; root)
	rm -rf .base-rootfs
	debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm .base-rootfs \
	  http://deb.debian.org/debian
	tar -C .base-rootfs -c . | $(DOCKER) import - tfpipe-base:bookworm
	rm -rf .base-rootfs

images: ## build the component image $(IMAGE) from $(BASE_IMAGE) (containers/components/Dockerfile)
	DOCKER_BUILDKIT=1 $(DOCKER) build --network host -f containers/components/Dockerfile \
	  --build-arg BASE_IMAGE=$(BASE_IMAGE) $(CA_SECRET) -t $(IMAGE) .

run-docker: data ## run the pipeline with each step in $(IMAGE) (make images first)
	$(BIN)/tfpipe run --docker --config $(CONFIG) --set pipeline.base_image=$(IMAGE)

clean: ## remove runs/ and data/ (keeps .venv)
	rm -rf runs data

# Each peer gets its own venv from Debian's python3.11 (PyTriton's Python stub embeds a 3.11 runtime older than
# newer 3.11 standard libraries expect); its pins clash with ours, so it is never a test dependency.
bench-peers: setup ## tfpipe's server side by side with KServe and PyTriton (venvs in benchmarks/peers/*/.venv)
	@benchmarks/peers/load-generators.sh
	@for peer in kserve pytriton; do \
	  venv=benchmarks/peers/$$peer/.venv; \
	  [ $$venv/.installed -nt benchmarks/peers/$$peer/requirements.txt ] && continue; \
	  rm -rf $$venv && /usr/bin/python3.11 -m venv $$venv && \
	  $$venv/bin/pip install --quiet -r benchmarks/peers/$$peer/requirements.txt && touch $$venv/.installed || exit 1; \
	done
	$(BIN)/python benchmarks/peers.py

.PHONY: help setup data run test test-fast host lint compile tensorboard serve bench base-image images run-docker clean \
	bench-peers
