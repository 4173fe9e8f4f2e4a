# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make demo   — venv, install, run the main job on the embedded DuckDB store
#   make test   — venv, dev dependencies, Debian chromium, npm anvil + solc, the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TOOLS  := .tools
ANVIL  := $(TOOLS)/node_modules/.bin/anvil
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export BCL_DATA_DIR := $(CURDIR)/.cache/bitcoinlib
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test deps browser anvil lint bench clean

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import tracer, duckdb, web3, bitcoinlib, dash, playwright"
	touch $@

deps: $(VENV)/.deps

browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

anvil: $(ANVIL)
$(ANVIL):
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error @foundry-rs/anvil@1.7.1 solc@0.8.26
	$(ANVIL) --version | head -1

test: deps browser anvil
	$(VENV)/bin/ruff check tracer heuristics dashboard tests bench
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest -q

demo: deps
	$(VENV)/bin/tracer --db demo.duckdb demo

lint: deps
	$(VENV)/bin/ruff check tracer heuristics dashboard tests bench

bench: deps
	$(PY) bench/bitcoin_parse.py

clean:
	rm -rf $(VENV) $(TOOLS) .cache demo.duckdb out
