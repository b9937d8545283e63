# Liaison: make run (serve the demo), make test (the whole suite), make lint, make bench,
# make lock (regenerate the hashed locks after editing requirements*.txt), make audit.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# WebSocket limits (bytes): a frame over these is refused by the server with 1009.
WS_MAX_MESSAGE ?= 65536
WS_MAX_FRAME ?= 65536
DAPHNE_FLAGS := --websocket-max-message-size $(WS_MAX_MESSAGE) --websocket-max-frame-size $(WS_MAX_FRAME)

.PHONY: run serve test lint format bench clean lock audit compilemessages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs come from the hashed locks only: requirements*.txt are the human-edited inputs of
# `make lock`, the *.lock files are what gets installed (here, in CI and in the image).
$(VENV)/.runtime: requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	touch $@

$(VENV)/.dev: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime compilemessages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	@echo "Liaison is serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) config.asgi:application

serve: $(VENV)/.runtime compilemessages
	$(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) config.asgi:application

# The translation catalogues (liaison/locale/*/LC_MESSAGES/*.po) compiled to the git-ignored .mo
# files Django reads, in pure Python (no GNU gettext needed).
compilemessages: $(VENV)/.runtime
	$(BIN)/python manage.py compilecatalogues

test: $(VENV)/.dev compilemessages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The WebSocket load test (bench/loadtest.py, about 10 minutes) writes docs/benchmarks.md; give it
# what production runs: DATABASE_URL=postgres://... REDIS_URL=redis://... make bench
bench: $(VENV)/.dev
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python -m bench

# --- locks and their audit -----------------------------------------------------------------
TOOLS := .venv-tools
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
# Resolve against the package index alone, ignoring any local pip configuration (mirrors,
# find-links, constraints), so a lock holds the index's own hashes and installs anywhere.
INDEX_ONLY := env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL \
	PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock"

$(TOOLS)/.installed: requirements-tools.lock
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes -r requirements-tools.lock
	touch $@

# Keeps existing pins where they still fit; `make lock LOCK_ARGS=--upgrade` moves everything.
lock: $(TOOLS)/.installed
	$(INDEX_ONLY) $(TOOLS)/bin/pip-compile $(LOCK_FLAGS) -o requirements.lock requirements.txt
	$(INDEX_ONLY) $(TOOLS)/bin/pip-compile $(LOCK_FLAGS) -o requirements-dev.lock requirements-dev.txt
	$(INDEX_ONLY) $(TOOLS)/bin/pip-compile $(LOCK_FLAGS) -o requirements-tools.lock requirements-tools.txt

# Known vulnerabilities in every locked package. Needs the advisory service, so it is not part
# of `make test`; a package that could not be audited fails it like a vulnerable one.
audit: $(TOOLS)/.installed
	@report=$$(mktemp); status=0; \
	$(TOOLS)/bin/pip-audit --strict --disable-pip --progress-spinner off \
		-r requirements.lock -r requirements-dev.lock >"$$report" 2>&1 || status=$$?; \
	cat "$$report"; \
	if grep -qi "could not be audited" "$$report"; then \
		echo "make audit: some locked packages could not be audited"; status=1; fi; \
	rm -f "$$report"; exit $$status

clean:
	rm -rf $(VENV) $(TOOLS) var/test-*.sqlite3 .pytest_cache .ruff_cache
