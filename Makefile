# Two commands for a fresh clone: `make run` serves, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
# `make run` is for local development: authentication off, bound to 127.0.0.1 (a warning is logged).
MIPOMERSEN_CDS_AUTH ?= off
FUZZ_REQUESTS ?= 10000
# Where the service keeps its SQLite database; the service reads the same variable.
MIPOMERSEN_CDS_DATA_DIR ?= data

.PHONY: run test fuzz bench chaos cluster clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	mkdir -p "$(MIPOMERSEN_CDS_DATA_DIR)"
	MIPOMERSEN_CDS_AUTH=$(MIPOMERSEN_CDS_AUTH) MIPOMERSEN_CDS_DATA_DIR="$(MIPOMERSEN_CDS_DATA_DIR)" \
		$(BIN)/mipomersen-cds serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --cov --cov-report=term

# schemathesis from openapi.yaml against the app (auth on), in process; prints requests and 5xx.
fuzz: $(VENV)/.installed-test
	$(BIN)/python -m tests.fuzzing --requests $(FUZZ_REQUESTS)

# Benchmark (issue 7): prints tables with the goals beside the figures, writes bench/results/.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Fault suite (issue 12): hostile input, SIGKILL under load, database, Redis and disk faults,
# slow clients with and without nginx; prints the table of the README's reliability section.
chaos: $(VENV)/.installed-test
	$(BIN)/python -m tests.chaos $(CHAOS_ARGS)

# nginx (Debian's) in front of CLUSTER_INSTANCES instances sharing the local PostgreSQL
# (database mipomersen_cluster) and Redis (database 6), all on loopback; Ctrl-C stops it.
# `python -m bench.cluster measure` measures throughput with 1, 2 and 3 instances.
CLUSTER_INSTANCES ?= 2
cluster: $(VENV)/.installed
	$(BIN)/python -m bench.cluster up --instances $(CLUSTER_INSTANCES) $(CLUSTER_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
