# The one entry point. New here? `make up`, then open the URL it prints. `make test` is what CI runs.
#
#   make up            start everything (PostgreSQL, Redis, HAPI, migrations, demo data, API)
#   make status        what runs where          make logs SERVICE=hapi   a service's log
#   make down          stop everything          make clean-stack         stop + delete .stack
#   make test          stack (no API), Chromium + chromedriver, lint, the whole pytest suite
#   make lint          ruff check, ruff format --check, mypy --strict backend/ehr, import contract
#   make fuzz          schemathesis on every API operation for FUZZ_SECONDS (default 600)
#
# Run from the repository root. Ports and paths come from EHR_STACK_* variables (.env.example).
# ARGS passes options to `ehr stack up`, e.g. `make up ARGS=--no-seed`; PYTEST_ARGS to pytest,
# e.g. `make test PYTEST_ARGS="-k ready"`.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT   := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
VENV   := $(ROOT)/.venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ehr-installed
PIP    := $(PY) -m pip --disable-pip-version-check
PYTHON ?= $(shell command -v python3.11 || command -v python3)
STACK  := @$(PY) -m ehr.devstack
# Runs a command with the stack's EHR_DB__URL / EHR_REDIS__URL / EHR_FHIR__BASE_URL and
# EHR_GATEWAY__PUBLIC_BASE_URL (unless set) set: they differ from the settings' defaults when
# EHR_STACK_* ports are overridden.
IN_STACK := $(PY) -m ehr.devstack run --

.PHONY: help venv up down stop status logs test lint fuzz bench seed migrate clean-stack contract

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when backend/pyproject.toml is newer than the stamp. Quiet for a new user: no
# "new release of pip" notice (pip is upgraded right here); the editable install is a plain .pth
# entry (package-dir in pyproject.toml), which setuptools installs without its warning box.
$(STAMP): $(ROOT)/backend/pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '$(ROOT)/backend[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv (python3.11) and install backend[dev] when pyproject changed

up: venv ## start everything and leave the API running in background; prints where to go
	$(STACK) up $(ARGS)

down: venv ## stop API, HAPI, Redis and PostgreSQL (no process left behind)
	$(STACK) down

stop: down ## same as down

status: venv ## show each service: state, address, pid, log
	$(STACK) status

logs: venv ## last lines of the logs (SERVICE=postgres|redis|hapi|api)
	$(STACK) logs $(SERVICE)

test: venv ## THE test command: stack without API, Chromium, lint, then the whole pytest suite
	$(STACK) up --no-api --no-seed
	$(STACK) browser
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(IN_STACK) $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	exit $$status

lint: venv ## ruff check, ruff format --check, mypy --strict on backend/ehr, the import contract
	cd $(ROOT) && $(VENV)/bin/ruff check .
	cd $(ROOT) && $(VENV)/bin/ruff format --check .
	cd $(ROOT)/backend && $(VENV)/bin/mypy ehr
	cd $(ROOT)/backend && $(VENV)/bin/lint-imports --config $(ROOT)/.importlinter --no-cache

FUZZ_SECONDS  ?= 600
FUZZ_EXAMPLES ?= 150
fuzz: venv ## fuzz every API operation (live API, real stack) in random rounds for FUZZ_SECONDS
	$(STACK) up --no-api --no-seed
	@started=$$SECONDS; round=0; \
	while [ $$((SECONDS - started)) -lt $(FUZZ_SECONDS) ]; do \
	  round=$$((round + 1)); echo "== fuzz round $$round ($$((SECONDS - started)) s of $(FUZZ_SECONDS))"; \
	  EHR_FUZZ_RANDOM=1 EHR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(IN_STACK) $(PY) -m pytest -q \
	    -p no:cacheprovider tests/integration/fuzz/test_api_fuzz.py $(PYTEST_ARGS) || exit 1; \
	done; echo "fuzz: $$round rounds, no failure, $$((SECONDS - started)) s"

bench: venv ## every benchmarks/*.py, side by side, against the local stack (ARGS passed on)
	$(STACK) up --no-api --no-seed
	@for script in benchmarks/[!_]*.py; do \
	  echo "== $$script"; $(IN_STACK) $(PY) $$script $(ARGS) || exit 1; \
	done

seed: venv ## load the synthetic demo data (starts the stack without the API if needed)
	$(STACK) up --no-api --no-seed
	$(IN_STACK) $(VENV)/bin/ehr seed

contract: venv ## export frontend-contract/openapi.json and regenerate its TypeScript types
	$(VENV)/bin/ehr contract export
	cd frontend-contract && npm ci --no-audit --no-fund && npm run generate

migrate: venv ## bring the app schema to head (ehr migrate) on the stack's database
	$(STACK) up --only postgres
	$(IN_STACK) $(VENV)/bin/ehr migrate

clean-stack: venv ## stop everything and delete .stack (all local data)
	$(STACK) clean
