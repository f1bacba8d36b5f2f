# Quick start: `make demo` runs a real training job on the embedded emulator (always: --emulator);
# `make test` runs the whole suite. Both create .venv and install everything they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench bench-watch bench-logs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	GCPJOBS_DATA_DIR=$(CURDIR)/.gcpjobs $(BIN)/gcpjobs run --emulator examples/vertex/train.yaml
	@$(BIN)/python examples/vertex/show_model.py $(CURDIR)/.gcpjobs

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/cold_start.py
	$(BIN)/python benchmarks/remote_step.py

# Minutes, not seconds: up to 10,000 emulator jobs, gcpjobs' watcher beside per-job polling.
bench-watch: $(STAMP)
	$(BIN)/python benchmarks/watch.py --window 60

# Minutes: 10 and 100 emulator jobs printing a line a second, 1,000 a line every 10 s, their
# logs followed two ways.
bench-logs: $(STAMP)
	$(BIN)/python benchmarks/logs.py --window 60
	$(BIN)/python benchmarks/logs.py --window 60 --sizes 1000 --line-every 10

clean:
	rm -rf $(VENV) .gcpjobs .pytest_cache .mypy_cache .ruff_cache
