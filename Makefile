# aletheia-mcp — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Claude Code, a real client the gateway's and the hooks' tests drive (tests/gateway/, tests/hooks/*claude_code*),
# installed into this checkout only (gitignored), once per version: nothing is fetched at test time.
NODE_DIR       := .cache/node
CLAUDE_VERSION := 2.1.328
CLAUDE_STAMP   := $(NODE_DIR)/.claude-code-$(CLAUDE_VERSION)
# The application never reads a working directory's `.env` by itself (a cloned repository could
# redirect keys); these targets name this repository's own `.env`, when there is one, explicitly.
ENV_FILE ?= $(wildcard .env)
WITH_ENV := $(if $(ENV_FILE),ALETHEIA_ENV_FILE=$(ENV_FILE))

.PHONY: setup test-clients test lint demo doctor bench conformance migrate-up migrate-down migrate-rev

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(CLAUDE_STAMP):
	@command -v npm >/dev/null || { echo "make test-clients: npm not found. The gateway's and the hooks' tests run Claude Code," \
		"which needs Node.js (>= 20) and npm: install them, then run make test again." >&2; exit 1; }
	mkdir -p $(NODE_DIR)
	npm install --prefix $(NODE_DIR) --save-exact --no-audit --no-fund --loglevel=error \
		@anthropic-ai/claude-code@$(CLAUDE_VERSION)
	$(NODE_DIR)/node_modules/.bin/claude --version
	touch $@

setup: $(STAMP)

# The test prerequisites beyond the Python ones (`make demo` and the rest do not need Claude Code).
test-clients: $(CLAUDE_STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup test-clients lint
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
