# Every target sets up what it needs, so `make demo` and `make test` work on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed
# Every package, pinned with its sha256 hashes: resolved by `make lock`, never by `make setup`.
LOCK   := requirements/dev.lock
# The runtime image's packages: the `runtime` extra alone, at the versions of $(LOCK).
RUNTIME_LOCK := requirements/runtime.lock

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup lock tools train demo validate compile check test lint typecheck unit fuzz bench schema clean

## Installs exactly the locked versions, as wheels (pip checks every hash), then modelops itself,
## built with the locked setuptools: nothing is resolved against what the index serves today.
$(SETUP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --only-binary :all: -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(SETUP)

setup: $(SETUP)

## Re-resolve the lock after editing dependencies in pyproject.toml (tests/test_lock.py fails until
## then). Pins already in the lock are kept; `make lock LOCKFLAGS=--upgrade` moves all to the newest.
LOCKFLAGS ?=
lock: setup
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(BIN)/uv pip compile pyproject.toml - --extra dev --universal --python-version 3.11 \
	      --generate-hashes --quiet --custom-compile-command 'make lock' $(LOCKFLAGS) -o $(LOCK)
	$(BIN)/python -c 'import tomllib; t = tomllib.load(open("pyproject.toml", "rb")); print(*t["project"]["optional-dependencies"]["runtime"], *t["build-system"]["requires"], sep="\n")' \
	  | $(BIN)/uv pip compile - --constraint $(LOCK) --universal --python-version 3.11 \
	      --generate-hashes --quiet --custom-compile-command 'make lock' -o $(RUNTIME_LOCK)

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

## The CI guard: is generated/ the fresh output of specs/? --full renders every model again:
## a model's input hash covers modelops's version, not its code, which changes here.
check: setup
	$(BIN)/modelops compile specs/ --check --full

## The whole test suite: lint, type check, then pytest.
test: lint typecheck unit

lint: setup
	$(BIN)/ruff check compiler tests bench

typecheck: setup
	$(BIN)/mypy

unit: setup tools
	$(BIN)/pytest

## Long Hypothesis runs over generated and mutated specs; not part of `make test`.
fuzz: setup
	$(BIN)/pytest -m fuzz tests/test_fuzz.py -q

bench: setup
	$(BIN)/python bench/compile_bench.py
	$(BIN)/python bench/serve_bench.py

## Retrain the demo models and print their sha256 pins (the same bytes on one machine; on another
## CPU the last bits of a float may differ: `python specs/train.py --check` compares behaviour).
train: setup
	$(BIN)/python specs/train.py

## Regenerate the JSON Schemas that the example specs point editors at, and the package's copy
## that `modelops init` writes into new projects (tests check both are fresh).
schema: setup
	$(BIN)/modelops schema > specs/schema/model.json
	$(BIN)/modelops schema --kind Project > specs/schema/project.json
	cp specs/schema/model.json specs/schema/project.json compiler/spec/schemas/

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
