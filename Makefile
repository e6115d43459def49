# pushfan: every command a developer or CI needs. `make demo` and `make test` do all set-up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install services format lint typecheck test test-fast test-unit faults fuzz demo bench bench-simulators trigger-latency loadtest container-tools image compose-test clean

$(STAMP): pyproject.toml loadtest/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[dev]" -e ./loadtest
	touch $(STAMP)

install: $(STAMP)
	@# The dashboard's browser test drives Debian's Chromium (Playwright never downloads one).
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# RabbitMQ, Redis and PostgreSQL: checked, started if installed but stopped, else explained.
services:
	python3 -m loadtest.services

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# ruff (style, bugs, McCabe complexity) and import-linter (the layers in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

# Everything but the fault drills and the full-size fuzzing, which have targets of their own
# (.ci/run runs all three) so that this one stays under 10 minutes.
test: install services lint typecheck
	$(PY) -m pytest -q -m "not fuzz and not faults" $(PYTEST_ARGS)

test-fast: install services
	$(PY) -m pytest -q -m "not e2e and not fuzz and not faults" $(PYTEST_ARGS)

# The fault drills (loadtest/faults.py at a small population): processes SIGKILLed, the broker
# restarted, a provider failing, and the store drills on private Redis/PostgreSQL instances.
faults: install services
	$(PY) -m pytest -q -m faults $(PYTEST_ARGS)

# schemathesis at full size: 300 examples per operation and mode, NUL allowed (.ci/run).
fuzz: install services
	$(PY) -m pytest -q -m fuzz $(PYTEST_ARGS)

# The pure functions alone: no service needed, a few seconds.
test-unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

demo: install services
	$(VENV)/bin/pushfan demo $(DEMO_ARGS)

# pushfan bench: 10^6 devices through the whole pipeline vs the seed design and the
# original clients; table + ratios on stderr, JSON last line, PNG in artifacts/.
bench: install services
	$(VENV)/bin/pushfan bench $(BENCH_ARGS)

bench-simulators: install
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	$(PY) loadtest/bench_simulators.py

trigger-latency: install services
	$(PY) loadtest/trigger_latency.py

# Locust against a local stack for 60 s; CSV + HTML in artifacts/loadtest; fails the SLO gate
# (error ratio > 0.1% or an endpoint's p95 over --p95-ms). LOADTEST_ARGS="--users 50" etc.
loadtest: install services
	$(PY) -m loadtest.run_locust --duration 60 $(LOADTEST_ARGS)

# Containers without a Docker engine or a registry: podman, mmdebstrap and runc from Debian,
# podman configured by deploy/podman/containers.conf (the machine's own config untouched).
container-tools:
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq podman mmdebstrap runc)

image compose-test: export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf

# The production image (pushfan:dev) and the simulators image (pushfan-simulators:dev), on
# bases made from Debian's packages (RabbitMQ, Redis, PostgreSQL, Prometheus too; a base is
# only rebuilt when its recipe changes); sizes printed. deploy/podman/images.py --help.
image: container-tools
	python3 deploy/podman/images.py all

$(VENV)/.podman-compose: $(STAMP)
	$(PIP) install --quiet "podman-compose>=1.6"
	touch $@

# deploy/docker-compose.yml for real (host ports moved off the shared services): a key, 10^5
# devices, three global alerts (plain, SIGTERM of a sender, RabbitMQ restart) checked against
# the simulators, Prometheus targets, non-root read-only containers. COMPOSE_TEST_ARGS=--keep.
compose-test: image $(VENV)/.podman-compose
	$(PY) -m loadtest.compose_check $(COMPOSE_TEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
