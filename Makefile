# Every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)

.DEFAULT_GOAL := help
.PHONY: help venv run test test-unit check fmt token clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## Create the virtualenv and install the project (done on first use)

run: $(STAMP) ## Run the whole system locally: Postgres, broker, gateway on :8000, the three functions
	$(BIN)/betting dev

test: $(STAMP) ## Run the whole test suite (starts its own Postgres and broker)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run only the unit tests (no servers)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

check: $(STAMP) ## Lint, format check and type check (ruff, mypy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy betting gateway functions tests migrations

fmt: $(STAMP) ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

token: $(STAMP) ## Mint a token: make token ROLE=player USER_ID=alice
	$(BIN)/betting token --role $(or $(ROLE),player) $(if $(USER_ID),--user $(USER_ID))

clean: ## Remove the virtualenv and the local dev data
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
