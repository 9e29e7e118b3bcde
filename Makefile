# The README's quickstart commands. Everything installs into .venv from PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo serve test test-cluster lint format bench-ingest clean

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

# The store, ingestion, exporter and API tests again, on a 3-master Redis Cluster that the
# session starts on free loopback ports and stops (docs/redis.md).
CLUSTER_TESTS := tests/store tests/eventlog tests/api/test_events_api.py \
	tests/api/test_analytics.py tests/api/test_nudges_api.py tests/api/test_visitors.py \
	tests/test_redis_client.py

test-cluster: setup
	$(BIN)/pytest -q --redis-cluster $(CLUSTER_TESTS)

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
