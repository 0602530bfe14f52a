# koomsg: `make run` serves the embedded default, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB := koomsg/web
WEB_STAMP := $(WEB)/node_modules/.installed
PORT ?= 8000
HOST ?= 127.0.0.1
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
AMQP_TEST_URL ?= amqp://guest:guest@127.0.0.1:5672/

.PHONY: install run test test-sqlite test-postgres check lint format schema bench bench-deps clean

install: $(STAMP) $(WEB_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "koomsg needs Python 3.11 or newer"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e plugins_contrib/koomsg-webhooks
	touch $@

# GraphiQL's scripts and styles come from the npm registry and are served by koomsg itself.
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

run: install
	$(BIN)/koomsg serve --demo --host $(HOST) --port $(PORT)

check: install
	$(BIN)/ruff check koomsg tests bench plugins_contrib
	$(BIN)/ruff format --check koomsg tests bench plugins_contrib
	$(BIN)/mypy koomsg

test: install check test-sqlite test-postgres

test-sqlite: install
	KOOMSG_TEST_DATABASE=sqlite $(BIN)/pytest -q

test-postgres: install
	KOOMSG_TEST_DATABASE=postgresql KOOMSG_TEST_PG_URL=$(PG_TEST_URL) \
	  KOOMSG_TEST_BROKER_URL=$(REDIS_TEST_URL) $(BIN)/pytest -q
	KOOMSG_TEST_DATABASE=postgresql KOOMSG_TEST_PG_URL=$(PG_TEST_URL) \
	  KOOMSG_TEST_BROKER_URL=$(AMQP_TEST_URL) $(BIN)/pytest -q -m broker

lint: check

format: install
	$(BIN)/ruff check --fix koomsg tests bench plugins_contrib
	$(BIN)/ruff format koomsg tests bench plugins_contrib

schema: install
	$(BIN)/python -m koomsg.schema.export schema.graphql

bench-deps:
	command -v /usr/sbin/smtp-sink >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix)

bench: install bench-deps
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(WEB)/node_modules var
