# Two commands on a fresh machine: `make run` (set up, seed the demo, serve) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9
GRAPHIQL_ASSETS := var/graphiql
HOST ?= 127.0.0.1
PORT ?= 8000

# This machine sets PYTHONDONTWRITEBYTECODE; without bytecode caches every CLI and server
# subprocess the tests start recompiles its dependencies.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup assets run test test-postgres lint bench bench-scale schema clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(STAMP) assets

# GraphiQL's JavaScript and CSS, pinned and integrity-checked, fetched with npm (never committed).
assets: $(STAMP)
	$(BIN)/python schema/fetch_graphiql_assets.py --dest $(GRAPHIQL_ASSETS)

run: setup
	GATEWAY_PUBLIC_URL=$${GATEWAY_PUBLIC_URL:-http://$(HOST):$(PORT)} $(BIN)/gateway demo
	$(BIN)/gateway serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest

# The same suite against PostgreSQL and Redis (as .ci/run does).
test-postgres: setup
	GATEWAY_TEST_DATABASE_URL=$${GATEWAY_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	GATEWAY_TEST_REDIS_URL=$${GATEWAY_TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

schema: $(STAMP)
	$(BIN)/gateway schema export schema/schema.graphql

bench: setup
	$(BIN)/python -m bench.run

bench-scale: setup
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) var .pytest_cache
