# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# what `make lock` runs pip-compile with: a pair known to work together
LOCK_TOOLS ?= pip==26.3 pip-tools==7.6.2
LOCKFLAGS ?=

.PHONY: install lock test lint typecheck demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# requirements.lock pins every runtime and dev dependency (with hashes): `make` installs
# exactly those, then the project itself without resolving anything; `pip check` stops a
# lock older than pyproject.toml's dependencies (`make lock` then). The web pages' assets
# (GOV.UK Frontend; axe-core for the accessibility tests) come from the npm registry, exactly
# as web/package-lock.json pins them (`npm ci`; `cd web && npm install` to change them).
$(STAMP): pyproject.toml $(LOCK) web/package.json web/package-lock.json | $(BIN)/python
	cd web && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check || { echo "$(LOCK) does not satisfy pyproject.toml: run make lock" >&2; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# Regenerate requirements.lock from pyproject.toml (its dependencies and the dev extra) with
# pip-tools' pip-compile, which this installs into a throwaway venv of its own (removed after).
# Pins that still fit are kept; `make lock LOCKFLAGS=--upgrade` moves all to the newest allowed,
# `LOCKFLAGS="--upgrade-package NAME"` one. Resolved for $(PYTHON)'s version (3.11 here).
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet $(LOCK_TOOLS); \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tmp/venv/bin/pip-compile" --quiet --extra dev \
	    --strip-extras --allow-unsafe --generate-hashes --no-emit-index-url \
	    --no-emit-find-links $(LOCKFLAGS) --output-file $(LOCK) pyproject.toml; \
	echo "$(LOCK): $$(grep -c '^[A-Za-z0-9].*==' $(LOCK)) packages pinned"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

demo: $(STAMP)
	$(BIN)/cases demo

bench: $(STAMP)
	$(BIN)/python bench/append.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
