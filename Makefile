# Every command a newcomer needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)

.DEFAULT_GOAL := help
.PHONY: help venv run test soak test-unit check fmt token bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## Create the virtualenv and install the project (done on first use)

run: $(STAMP) ## Run the whole system locally: Postgres, broker, both servers (all on :8000), functions
	$(BIN)/betting dev

test: $(STAMP) ## Run the whole test suite (starts its own Postgres and broker), then deploy-check and image-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory deploy-check
	$(MAKE) --no-print-directory image-test

soak: $(STAMP) ## The long fault tests: SIGKILLs during 100k- and 1M-bet settlements, one event of 2M bets (about ten minutes)
	$(BIN)/python -m pytest tests/faults -m soak -s $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run only the unit tests (no servers)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

check: $(STAMP) ## Lint, format check, type check and import layers (ruff, mypy, import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy betting gateway functions launcher tests migrations bench
	$(BIN)/lint-imports --no-logo --no-cache

fmt: $(STAMP) ## Format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

token: $(STAMP) ## Mint a token: make token ROLE=player USER_ID=alice
	BETTING_ENV=$${BETTING_ENV:-dev} $(BIN)/betting token --role $(or $(ROLE),player) $(if $(USER_ID),--user $(USER_ID))

bench: $(STAMP) ## Benchmarks on the local stack → bench/results.md (QUICK=1: small; PROFILE=1: py-spy; SECTIONS=gateway: only those)
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(if $(PROFILE),--profile) $(if $(SECTIONS),--sections $(SECTIONS))

.PHONY: bench-book bench-stream bench-writer

bench-book: $(STAMP) ## Benchmark the book at 1M bets and what its totals cost placement → bench/results-book.md
	$(BIN)/python -m bench.book

bench-stream: $(STAMP) ## Benchmark the bet stream with 1,000 subscribers → bench/results-stream.md
	$(BIN)/python -m bench.stream

bench-writer: $(STAMP) ## What the stream's log costs the bet writer → bench/results-writer.md
	$(BIN)/python -m bench.writer_cost

clean: ## Remove the virtualenv and the local dev data
	rm -rf $(VENV) .venv-deploy .venv-checkov .dev .pytest_cache .mypy_cache .ruff_cache

# Deployment: the image, Compose, k8s/, the Helm chart and kind (see README, "Deploying").
.PHONY: deploy-tools deploy-check image-test kind-up kind-down

deploy-tools: ## Install the deploy checks' tools into .venv-deploy and .venv-checkov (pinned)
	bash scripts/deploy-tools.sh

deploy-check: deploy-tools ## Static checks of Dockerfile, Compose, k8s/ and the chart (no cluster)
	.venv-deploy/bin/python -m pytest tests/deploy --confcutdir=tests/deploy -p no:cacheprovider $(PYTEST_ARGS)

image-test: $(STAMP) ## Build the image and run every component from it as the chart does (needs root or a Docker engine)
	$(BIN)/python -m pytest tests/image -p no:cacheprovider $(PYTEST_ARGS)

kind-up: ## Everything on a local kind cluster, then a smoke test (needs Docker, kind, kubectl, helm)
	bash scripts/kind-up.sh

kind-down: ## Delete the kind cluster of kind-up
	bash scripts/kind-down.sh
