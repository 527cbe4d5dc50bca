# mcpgw: the verbs. CI runs `make test` (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO  ?= cargo
VENV   := .venv
PY     := $(VENV)/bin/python
TS_DIR := tests/ts
# The binary the end-to-end tests start (all three suites use it).
export MCPGW_BIN := $(CURDIR)/target/debug/mcpgw

.PHONY: help run build test test-rust test-python test-ts deps deps-python deps-ts lint fmt clean

help:
	@echo "make run     start the gateway on the embedded default config (http://127.0.0.1:8080)"
	@echo "make test    install what the tests need, then run every test suite"
	@echo "make lint    rustfmt check and clippy with warnings as errors"

run:
	$(CARGO) run -p mcpgw --

build:
	$(CARGO) build -p mcpgw

# ---- test dependencies: official MCP SDK clients from PyPI and npm ----------------------
deps: deps-python deps-ts

deps-python: $(VENV)/.installed
$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

deps-ts: $(TS_DIR)/node_modules/.installed
$(TS_DIR)/node_modules/.installed: $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ---- tests --------------------------------------------------------------------------------
test: build deps test-rust test-python test-ts

test-rust: build
	$(CARGO) test --workspace

test-python: build deps-python
	$(PY) -m pytest tests/python -q

test-ts: build deps-ts
	cd $(TS_DIR) && node --test --test-reporter=spec

# ---- code hygiene -------------------------------------------------------------------------
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(TS_DIR)/node_modules
