# passport — two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0
# bench's PostgreSQL run drops and re-creates this database (its name must start with 'bench')
BENCH_PG_URL ?= postgresql://postgres@127.0.0.1:5432/bench

.PHONY: run test test-pg test-unit lint openapi bench install install-test lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements-test.lock $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.lock
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: venv, install, migrate the embedded SQLite DB under ./var, seed agreements, serve on :8000
## (links in messages point to http://HOST:PORT unless PASSPORT_BASE_URL is set)
run: export PASSPORT_BASE_URL ?= http://$(HOST):$(PORT)
run: install
	PASSPORT_ENV=dev $(BIN)/passport migrate
	PASSPORT_ENV=dev $(BIN)/passport agreements seed
	@echo "passport on http://$(HOST):$(PORT)/ — SMS codes go to http://$(HOST):$(PORT)/dev/outbox"
	PASSPORT_ENV=dev $(BIN)/passport serve --host $(HOST) --port $(PORT) --with-worker

## test: the whole suite (unit, integration on SQLite, browser), plus the OpenAPI freshness check
test: install-test
	$(BIN)/python tests/browser/ensure_chromium.py
	PASSPORT_ENV=test $(BIN)/passport openapi --check
	$(BIN)/pytest

## test-pg: the suite again against PostgreSQL and Redis
test-pg: install-test
	PASSPORT_TEST_DATABASE_URL=$(PG_URL) PASSPORT_TEST_REDIS_URL=$(REDIS_URL) $(BIN)/pytest

test-unit: install-test
	$(BIN)/pytest tests/unit

## lint: ruff, and the dependency rules (import-linter contracts in pyproject.toml)
lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

openapi: install
	PASSPORT_ENV=test $(BIN)/passport openapi

bench: install
	$(BIN)/python bench/login.py
	@if pg_isready -q -d "$(BENCH_PG_URL)" 2>/dev/null; then \
	  $(BIN)/python bench/login.py --postgres $(BENCH_PG_URL) --concurrency 50 --seconds 10; \
	else echo "bench: no PostgreSQL at $(BENCH_PG_URL): skipping the PostgreSQL login run"; fi
	$(BIN)/python bench/enumeration.py
	$(BIN)/python bench/notices.py
	$(BIN)/python bench/review.py

## lock: re-resolve pyproject.toml's pins into the two lock files
lock:
	rm -rf /tmp/passport-lock && $(PYTHON) -m venv /tmp/passport-lock
	/tmp/passport-lock/bin/pip install --quiet .
	(echo "# Runtime dependencies, every version pinned (transitive included). Regenerate: make lock"; \
	 /tmp/passport-lock/bin/pip freeze --exclude passport) > requirements.lock
	/tmp/passport-lock/bin/pip install --quiet ".[test]"
	(echo "# Runtime + test dependencies, every version pinned. Regenerate: make lock"; \
	 /tmp/passport-lock/bin/pip freeze --exclude passport) > requirements-test.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build *.egg-info src/*.egg-info
