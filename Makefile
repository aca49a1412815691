# One-command set-up on a fresh machine:
#   make run    create .venv, install tinct with the demo, start `tinct up` and the demo
#               (`tinct demo --with-server $(ARGS)`); Ctrl-C stops both
#   make up     create .venv, install tinct, start `tinct up $(ARGS)` on the embedded store
#   make test   install everything the tests need (pip + Debian packages), lint, type-check, test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the test suite starts as real servers.
DEB_PACKAGES := clickhouse-server redis-server postgresql mariadb-server nginx-light memcached \
	prometheus prometheus-node-exporter chromium openssl
TYPECHECK_TREE := build/typecheck

.PHONY: run up test venv install install-demo install-test demo-debs debs lint typecheck pytest bench clean

run: install-demo demo-debs
	$(VENV)/bin/tinct demo --with-server $(ARGS)

up: install
	$(VENV)/bin/tinct up $(ARGS)

venv: $(PY)
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip

install: venv
	$(PIP) install -q -e .

install-demo: venv
	$(PIP) install -q -e '.[demo]'

install-test: venv
	$(PIP) install -q -e '.[test]'

# Install the Debian packages the tests need, only when they are missing.
debs:
	@missing=""; \
	for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The demo uses Redis and PostgreSQL when installed: try to install them, and
# carry on without them (the demo says so: a dict, SQLite) when that fails.
DEMO_DEB_PACKAGES := redis-server postgresql
demo-debs:
	@missing=""; \
	for p in $(DEMO_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v redis-server >/dev/null 2>&1 && missing="$${missing/ redis-server/}"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing (for the demo)"; \
	  { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	      $$missing; } || echo "could not install$$missing: the demo runs without them"; \
	fi

test: install-test debs lint typecheck pytest

lint:
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# The installed namespace maps tinct.storage -> storage/ (etc.); mypy can't follow
# setuptools' editable finder, so it checks a tree of symlinks with the same shape.
typecheck:
	@rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)/tinct
	@for f in tinct/*; do case $$f in *__pycache__*) ;; *) ln -s ../../../$$f $(TYPECHECK_TREE)/tinct/;; esac; done
	@for p in tracing storage collectors dashboards; do ln -s ../../../$$p $(TYPECHECK_TREE)/tinct/$$p; done
	@ln -s ../../tests $(TYPECHECK_TREE)/tests && ln -s ../../bench $(TYPECHECK_TREE)/bench
	cd $(TYPECHECK_TREE) && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml -p tinct -p tests -p bench

pytest:
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

bench: install-test debs
	$(PY) -m bench.codecs
	$(PY) -m bench.propagation
	$(PY) -m bench.spans
	$(PY) -m bench.red
	$(PY) -m bench.ingest
	$(PY) -m bench.scrape
	$(PY) -m bench.remote_write
	$(PY) -m bench.promql
	$(PY) -m bench.topology
	$(PY) -m bench.ui

clean:
	rm -rf build .mypy_cache .pytest_cache .ruff_cache
