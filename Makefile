# Everyday targets. Every target calls the `orderflow` CLI or a tool from the project's venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORDERFLOW := $(BIN)/orderflow
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install up down status test test-realhosts test-fast fuzz chromium lint format bench chaos lock cloud-up cloud-down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(BIN)/orderflow: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/orderflow ## Create .venv and install orderflow with its dev tools

up: install ## Start the local stack: Kafka, topics, processors, dashboard
	$(ORDERFLOW) up

down: ## Stop everything `make up` started
	@if [ -x $(ORDERFLOW) ]; then $(ORDERFLOW) down; else echo "nothing to stop (no $(VENV))"; fi

status: install ## Show what the local stack is running
	$(ORDERFLOW) status

test: install chromium ## Run the whole test suite: real broker, browser, real-host deploys (as root)
	$(BIN)/pytest -m "not open_finding" $(PYTEST_ARGS)

test-realhosts: install ## Only the real-host deploy tests on booted Debian 12 hosts (root)
	$(BIN)/pytest -m realhosts $(PYTEST_ARGS)

# The browser tests drive Debian's Chromium. Installed here where that is possible (root with
# apt-get); otherwise they are skipped, and the skip names the command that enables them.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	  || echo "chromium missing: browser tests will be skipped (sudo apt-get install chromium)"

test-fast: install ## Run only the tests that need no broker or browser
	$(BIN)/pytest -m "not kafka and not browser and not realhosts" $(PYTEST_ARGS)

fuzz: install ## Property tests with many examples (the suite runs a few of each)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## Side-by-side and other benchmarks (BENCH_ARGS="--quick --only side-by-side --case main")
	$(BIN)/python -m bench $(BENCH_ARGS)

lock: install ## Regenerate deploy/requirements.lock (hash-pinned runtime deps of the app hosts)
	$(BIN)/uv pip compile pyproject.toml --quiet --universal --generate-hashes \
		--python-version 3.12 --custom-compile-command "make lock" \
		--output-file deploy/requirements.lock

CHAOS_ARGS ?=
chaos: install ## Kill processors, kill and pause brokers under load; account for every order
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

cloud-up: install ## pulumi up, save its outputs, then configure the VMs with pyinfra
	PATH="$(abspath $(BIN)):$$PATH" bash deploy/cloud.sh up

cloud-down: install ## pulumi destroy
	PATH="$(abspath $(BIN)):$$PATH" bash deploy/cloud.sh down

clean: down ## Remove local state (Kafka data, logs); keeps the jar cache
	rm -rf .orderflow artifacts
