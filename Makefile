# humantask developer tasks. `make test` is the test command (CI runs it via .ci/run).

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=

# Reinstalls only when the dependency declarations change.
STAMP := $(VENV)/.humantask-installed

.PHONY: install test run-local contracts services-up bench

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml clients/python/pyproject.toml constraints.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --disable-pip-version-check -e '.[test]' -e clients/python -c constraints.txt
	touch $@

test: install
	$(VENV)/bin/pytest -ra $(PYTEST_ARGS)

run-local: install
	bash scripts/run-local.sh

contracts: install
	$(VENV)/bin/python scripts/generate_contracts.py

services-up:
	bash scripts/start-test-services.sh

# `make bench`: ceilings and the stack side by side, one run (bench/README.md).
# BENCH_ARGS=--quick for a smoke run. Uses AMQP_URL and MONGODB_URL when set.
BENCH_ARGS ?=
BENCH_STAMP := $(VENV)/.humantask-bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(VENV)/bin/pip install --disable-pip-version-check -e '.[bench]' -c constraints.txt
	touch $@

bench: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)
