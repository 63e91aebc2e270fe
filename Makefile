# Every target sets up what it needs, so `make demo` and `make test` work on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup tools train demo validate compile check test lint typecheck unit bench schema clean

$(SETUP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(SETUP)

setup: $(SETUP)

## System tools the tests run for real: promtool and prometheus (Debian package `prometheus`).
tools:
	@command -v promtool >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus; }

## The main job: validate the bundled specs, check their gates, compile them into generated/.
demo: setup
	$(BIN)/modelops validate specs/
	$(BIN)/modelops evaluate specs/
	$(BIN)/modelops compile specs/

validate: setup
	$(BIN)/modelops validate specs/

compile: setup
	$(BIN)/modelops compile specs/

## The CI guard: is generated/ the fresh output of specs/?
check: setup
	$(BIN)/modelops compile specs/ --check

## The whole test suite: lint, type check, then pytest.
test: lint typecheck unit

lint: setup
	$(BIN)/ruff check compiler tests bench

typecheck: setup
	$(BIN)/mypy

unit: setup tools
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/compile_bench.py
	$(BIN)/python bench/serve_bench.py

## Retrain the demo models (deterministic: the same bytes, so the sha256 pins hold).
train: setup
	$(BIN)/python specs/train.py

## Regenerate the JSON Schemas that the example specs point editors at.
schema: setup
	$(BIN)/modelops schema > specs/schema/model.json
	$(BIN)/modelops schema --kind Project > specs/schema/project.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
