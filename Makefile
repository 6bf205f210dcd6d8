# humantask developer tasks. `make test` is the test command; CI (.ci/run) runs
# `make lint` and then `make test`.

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=

# Reinstalls only when the dependency declarations change.
STAMP := $(VENV)/.humantask-installed

.PHONY: install test test-unit lint lock lock-upgrade run-local contracts services-up bench bench-overload chaos docs demo test-compose quality-sim

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The locked versions (with their hashes) first, then the project and the client on top,
# without resolving anything again; `pip check` fails if the locks miss a dependency.
$(STAMP): pyproject.toml clients/python/pyproject.toml requirements/test.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --disable-pip-version-check --require-hashes -r requirements/test.txt
	$(VENV)/bin/pip install --disable-pip-version-check --no-deps -e . -e clients/python
	$(VENV)/bin/pip check
	touch $@

test: install
	$(VENV)/bin/pytest -ra $(PYTEST_ARGS)

# The base of the pyramid: the domain, the handlers against fakes, the HTTP contract
# in-process, the contracts. No services needed; seconds.
test-unit: install
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

# The project's own checks, configured in pyproject.toml ([tool.ruff], [tool.mypy]).
LINT_PATHS := services shared clients/python tools tests bench examples scripts chaos docs

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# The locks, requirements/*.txt, from pyproject.toml (and clients/python's): runtime.txt
# (what the image installs), test.txt (runtime + the test extra + the client + the `dev`
# group: ruff, mypy, uv), bench.txt (runtime + the bench extra), build.txt (the `image`
# group: the pip and the build backend the image builds with). Each is resolved within
# the one before, so a package has one version in all three. `make lock` keeps every
# locked version it can (after a change of pyproject.toml); `make lock-upgrade` takes the
# newest that pyproject.toml allows.
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' $(LOCK_ARGS)

# uv as locked (no `pip check`: pyproject.toml may already ask for what is not locked yet).
$(VENV)/bin/uv: | $(VENV)/bin/python
	$(VENV)/bin/pip install --disable-pip-version-check --require-hashes -r requirements/test.txt

lock: $(VENV)/bin/uv
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml clients/python/pyproject.toml --extra test \
		--group pyproject.toml:dev -c requirements/runtime.txt -o requirements/test.txt
	$(UV_COMPILE) pyproject.toml --extra bench -c requirements/test.txt -o requirements/bench.txt
	$(UV_COMPILE) --group pyproject.toml:docs -c requirements/test.txt -o requirements/docs.txt
	$(UV_COMPILE) --group pyproject.toml:image -c requirements/test.txt -o requirements/build.txt

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

run-local: install
	bash scripts/run-local.sh

contracts: install
	$(VENV)/bin/python scripts/generate_contracts.py

services-up:
	bash scripts/start-test-services.sh

# `make docs`: the static site (Sphinx with MyST Markdown, docs/conf.py) into
# _build/site/, from docs/, the README, CHANGELOG.md, DEVELOPERS.md and the evidence beside
# bench/ and chaos/. Strict: a warning (a broken link or anchor) fails the build.
DOCS_STAMP := $(VENV)/.humantask-docs-installed

$(DOCS_STAMP): $(STAMP) requirements/docs.txt
	$(VENV)/bin/pip install --disable-pip-version-check --require-hashes -r requirements/docs.txt
	$(VENV)/bin/pip check
	touch $@

docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build --fail-on-warning --keep-going --nitpicky -q -b html \
		-c docs . _build/site

# `make demo`: the demo stack with Docker (docker compose --env-file demo.env), healthy,
# and what to try it with: the API's URL, the demo key and callback secret, a worker token,
# the workbench, how to stop it (docs/operations/compose.md).
demo:
	bash scripts/demo.sh

# `make test-compose`: the compose stacks for real (scripts/compose-check.sh): the demo as
# the README starts it, the production path, the FerretDB variant, the placeholders
# refused, and the integration tier on testcontainers. Needs a Docker engine and root.
# COMPOSE_CHECK_STAGES picks some of them.
COMPOSE_CHECK_STAGES ?=

test-compose: install
	bash scripts/compose-check.sh $(COMPOSE_CHECK_STAGES)

# `make bench`: ceilings and the stack side by side, one run (bench/README.md).
# BENCH_ARGS=--quick for a smoke run. Uses AMQP_URL and MONGODB_URL when set.
BENCH_ARGS ?=
BENCH_STAMP := $(VENV)/.humantask-bench-installed

$(BENCH_STAMP): $(STAMP) requirements/bench.txt
	$(VENV)/bin/pip install --disable-pip-version-check --require-hashes -r requirements/bench.txt
	$(VENV)/bin/pip check
	touch $@

bench: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

# `make bench-overload`: the gateway at 512 clients, load shedding off and on (bench/README.md).
bench-overload: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.overload $(BENCH_ARGS)

# `make quality-sim`: the quality model replayed on every crowd data set in QUALITY_DATA
# and a synthetic crowd, against majority vote and Dawid–Skene; prints the table with
# PASS/FAIL per target, writes bench/results/quality/<date>-<commit>.json and .png
# (bench/quality.md). QUALITY_ARGS: --seed N (repeatable), --min-accuracy, --jobs.
QUALITY_DATA ?= ../shared/crowd-data
QUALITY_ARGS ?=

quality-sim: $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.quality_sim --suite $(QUALITY_DATA) $(QUALITY_ARGS)

# `make chaos`: 10,000 tasks with callbacks while every service copy (two of each) and
# RabbitMQ are killed with SIGKILL and restarted; checks the contract's promises and
# writes chaos/results/ (README, "Resilience"). Needs root and Debian's rabbitmq-server;
# uses MONGODB_URL's server (a database of its own) and RabbitMQ nodes of its own.
# CHAOS_ARGS: --tasks=1000 (CI), --cluster (three nodes, quorum queues, HAProxy), --seed=N.
CHAOS_ARGS ?=

chaos: install
	$(VENV)/bin/python -m chaos $(CHAOS_ARGS)
