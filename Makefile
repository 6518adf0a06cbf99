# Everyday targets. Every target calls the `orderflow` CLI or a tool from the project's venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORDERFLOW := $(BIN)/orderflow
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install up down status test test-fast lint format bench cloud-up cloud-down clean

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

test: install ## Run the whole test suite against a real broker
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install ## Run only the tests that need no broker or browser
	$(BIN)/pytest -m "not kafka and not browser and not realhosts" $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## Throughput, retry lateness and dashboard refresh benchmarks
	$(BIN)/python -m bench

cloud-up: install ## pulumi up, save its outputs, then configure the VMs with pyinfra
	PATH="$(abspath $(BIN)):$$PATH" bash deploy/cloud.sh up

cloud-down: install ## pulumi destroy
	PATH="$(abspath $(BIN)):$$PATH" bash deploy/cloud.sh down

clean: down ## Remove local state (Kafka data, logs); keeps the jar cache
	rm -rf .orderflow artifacts
