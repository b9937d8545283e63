# Liaison: make run (serve the demo), make test (the whole suite), make lint, make bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# WebSocket limits (bytes): a frame over these is refused by the server with 1009.
WS_MAX_MESSAGE ?= 65536
WS_MAX_FRAME ?= 65536
DAPHNE_FLAGS := --websocket-max-message-size $(WS_MAX_MESSAGE) --websocket-max-frame-size $(WS_MAX_FRAME)

.PHONY: run serve test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	@echo "Liaison is serving on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) config.asgi:application

serve: $(VENV)/.runtime
	$(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) config.asgi:application

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.dev
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var/test-*.sqlite3 .pytest_cache .ruff_cache
