# serenade's one task runner. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test browser lint fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "serenade needs Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install serenade with its development tools

run: $(STAMP) ## start the whole stack (embedded PostgreSQL and NATS unless URLs are set)
	$(BIN)/serenade dev

test: $(STAMP) browser ## run every test (real PostgreSQL and nats-server, started by the tests)
	$(BIN)/pytest

# The share page is tested in Debian's headless Chromium; it is installed once, from Debian's
# packages, never downloaded by a test at run time.
browser: ## install Debian's chromium for the share-page test, if it is missing
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium (the share-page test needs it)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

lint: $(STAMP) ## ruff (format and lint), mypy strict, import boundaries
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared services tests bench
	$(BIN)/lint-imports

fmt: $(STAMP) ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## run the benchmarks under bench/ and print their figures
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean: ## remove the environment and local data
	rm -rf $(VENV) .serenade build *.egg-info
