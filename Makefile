# serenade's one task runner. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test browser lint fmt bench drills docs screenshots client clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "serenade needs Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,vocals]'
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

# The suite against its floors; options through BENCH_ARGS (see `python -m bench --help`). The
# single-purpose scripts run alone: $(BIN)/python bench/bench_generator.py (or bench_local_provider).
bench: $(STAMP) ## benchmark suite: table, bench/results/latest.json and latest.png
	$(BIN)/python -m bench $(BENCH_ARGS)

# The full reliability drills (100 generator kills, 20 NATS crashes, a 30-minute soak, ...), each
# on a stack of its own; each writes its line of figures into docs/reliability.md. Their short
# versions run in `make test`. Takes about an hour and a half.
drills: $(STAMP) ## full reliability drills; their figures go to docs/reliability.md
	SERENADE_DRILLS_FULL=1 SERENADE_DRILLS_COMMAND="make drills" $(BIN)/pytest tests/drills -o timeout=3600

docs: $(STAMP) ## write docs/contract.md and the AsyncAPI documents of the services
	$(BIN)/python -m services.contract_reference docs/contract.md
	$(BIN)/python -m services.generator.asyncapi docs/asyncapi/generator.json
	$(BIN)/python -m services.deadletter.asyncapi docs/asyncapi/deadletter.json

screenshots: $(STAMP) browser ## retake the console's screenshots in docs/console/ (real Chromium)
	SERENADE_SCREENSHOTS=1 $(BIN)/pytest tests/integration/api/test_console_browser.py -q

# The app's TypeScript types: the inputs from the code, then the pinned npm generators (installed
# into clients/typescript/node_modules, never committed). Run it again after any API change.
CLIENT := clients/typescript
$(CLIENT)/node_modules/.installed: $(CLIENT)/package.json
	cd $(CLIENT) && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	@touch $@

client: $(STAMP) $(CLIENT)/node_modules/.installed ## write the TypeScript types of the API and events
	$(BIN)/python -m services.api.client_schemas $(CLIENT)
	cd $(CLIENT) && node generate.mjs && node_modules/.bin/tsc -p tsconfig.json

clean: ## remove the environment and local data
	rm -rf $(VENV) .serenade build *.egg-info $(CLIENT)/node_modules
