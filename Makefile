# aletheia-mcp — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The application never reads a working directory's `.env` by itself (a cloned repository could
# redirect keys); these targets name this repository's own `.env`, when there is one, explicitly.
ENV_FILE ?= $(wildcard .env)
WITH_ENV := $(if $(ENV_FILE),ALETHEIA_ENV_FILE=$(ENV_FILE))

.PHONY: setup test lint demo doctor bench conformance migrate-up migrate-down migrate-rev

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest -q

demo: setup
	$(WITH_ENV) $(BIN)/aletheia-mcp demo

bench: setup
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python -m bench $(ARGS)

conformance: setup
	bash scripts/conformance.sh

doctor: setup
	$(WITH_ENV) $(BIN)/aletheia-mcp doctor

migrate-up: setup
	$(WITH_ENV) $(BIN)/aletheia-mcp db upgrade

migrate-down: setup
	$(WITH_ENV) $(BIN)/aletheia-mcp db downgrade

migrate-rev: setup
	@test -n "$(m)" || (echo 'usage: make migrate-rev m="what it does"' >&2; exit 2)
	$(WITH_ENV) $(BIN)/aletheia-mcp db revision -m "$(m)"
