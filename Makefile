# Liaison: make run (serve the demo), make test (the whole suite), make lint, make bench,
# make lock (regenerate the hashed locks after editing requirements*.txt), make audit,
# make otp EMAIL=... (a demo account's current sign-in code).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where `make run` and `make serve` listen: make run HOST=0.0.0.0 PORT=8080
HOST ?= 127.0.0.1
PORT ?= 8000
# The address people open (the demo banner, invitation links) is the one served, unless
# LIAISON_BASE_URL says otherwise (behind a proxy, say).
SHOWN_HOST = $(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST))
run serve: export LIAISON_BASE_URL ?= http://$(SHOWN_HOST):$(PORT)
# WebSocket limits (bytes): a frame over these is refused by the server with 1009.
WS_MAX_MESSAGE ?= 65536
WS_MAX_FRAME ?= 65536
DAPHNE_FLAGS := --websocket-max-message-size $(WS_MAX_MESSAGE) --websocket-max-frame-size $(WS_MAX_FRAME)

.PHONY: run serve port-free otp test lint format bench clean lock audit compilemessages

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

# port-free comes first: a taken port fails the target before anything is installed or served.
# The background job worker (manage.py jobs: the exercises' lifecycle, exports, pruning) runs
# beside daphne and stops with it.
run: port-free $(VENV)/.runtime compilemessages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	@echo "Liaison is serving on $(LIAISON_BASE_URL)/ (Ctrl-C to stop)"
	@$(BIN)/python manage.py jobs --verbosity 0 & jobs=$$!; \
	trap 'kill $$jobs 2>/dev/null; wait $$jobs 2>/dev/null' EXIT INT TERM; \
	$(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) config.asgi:application

serve: port-free $(VENV)/.runtime compilemessages
	$(BIN)/daphne -b $(HOST) -p $(PORT) $(DAPHNE_FLAGS) config.asgi:application

# Binds HOST:PORT the way daphne will (SO_REUSEADDR), with the system Python (the venv may not
# exist yet), and says what to do when something already listens there.
define PORT_CHECK
import socket, sys
host, port, goal = sys.argv[1], int(sys.argv[2]), sys.argv[3] or "run"
family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
probe = socket.socket(family, kind, proto)
probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    probe.bind(address)
except OSError as error:
    sys.exit(
        f"make {goal}: port {port} on {host} is already in use ({error.strerror}). "
        f"Stop what is listening there, or use another port: make {goal} PORT={port + 1}"
    )
finally:
    probe.close()
endef
export PORT_CHECK

port-free:
	@$(PYTHON) -c "$$PORT_CHECK" '$(HOST)' '$(PORT)' '$(firstword $(MAKECMDGOALS))'

# The current sign-in code of a demo account (development only), so the demo needs no phone.
# Needs the demo loaded (make run) and nothing installed anew.
otp:
	@test -n "$(EMAIL)" || { echo "make otp: say whose code: make otp EMAIL=admin@liaison.example" >&2; exit 2; }
	@test -x $(BIN)/python || { echo "make otp: run make run first (it installs and loads the demo)" >&2; exit 2; }
	@$(BIN)/python manage.py demo --otp '$(EMAIL)'

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
