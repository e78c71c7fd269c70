# Two commands: `make run` serves the API on SQLite, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: install run demo lint test openapi sdk bench bench-import clean

$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Development: local webhook receivers (http, loopback) are allowed.
run: install
	$(BIN)/dealcoach migrate
	DEALCOACH_WEBHOOKS_ALLOW_PRIVATE=$${DEALCOACH_WEBHOOKS_ALLOW_PRIVATE:-true} $(BIN)/dealcoach serve --host $(HOST) --port $(PORT)

# A realistic demo organisation (refused when the database holds organisations), then serve it.
demo: install
	$(BIN)/dealcoach migrate
	$(BIN)/dealcoach demo $(DEMO_ARGS)
	DEALCOACH_WEBHOOKS_ALLOW_PRIVATE=$${DEALCOACH_WEBHOOKS_ALLOW_PRIVATE:-true} $(BIN)/dealcoach serve --host $(HOST) --port $(PORT)

# The architecture is checked, not hoped for: layering contracts (pyproject.toml), lint, format, types.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy

# Two processes (the machines here have two cores); each has its own databases.
test: lint
	$(BIN)/pytest -n 2

openapi: install
	$(BIN)/python -m app.openapi openapi/openapi.json

# Clients generated from openapi/openapi.json (not committed): Python into sdk/python, and, when npm
# is installed, TypeScript types into sdk/typescript for openapi-fetch (openapi/typescript/example.ts).
sdk: install
	rm -rf sdk/python
	$(BIN)/openapi-python-client generate --path openapi/openapi.json --config openapi/python-client.yaml \
		--output-path sdk/python --meta setup --fail-on-warning
	@if command -v npm >/dev/null; then \
		npm ci --prefix openapi/typescript --no-audit --no-fund && mkdir -p sdk/typescript && \
		openapi/typescript/node_modules/.bin/openapi-typescript openapi/openapi.json -o sdk/typescript/schema.d.ts; \
	else echo "npm is missing: TypeScript types skipped"; fi

bench: install
	bash bench/run.sh

# `dealcoach import deals` with a 100,000-row CSV against a real server on PostgreSQL (bench/README.md).
bench-import: install
	$(BIN)/python bench/import_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis dealcoach.db dealcoach.db-wal dealcoach.db-shm demo-keys.json
