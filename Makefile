# The README's quickstart commands. Everything installs into .venv from PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo serve test lint format bench-ingest clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,parquet]'
	touch $(STAMP)

demo: setup          ## sample store -> service on the embedded Redis, with curl lines to try
	$(BIN)/recsvc demo

serve: setup
	$(BIN)/recsvc serve

test: setup lint     ## lint, then the whole suite against REDIS_URL or an embedded Redis
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-ingest: setup
	$(BIN)/python -m loadtests.bench_ingest

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
