# oso-gateway — developer entry points. `make demo` and `make test` are all a fresh clone needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all venv test lint typecheck pytest demo bench clean pki docs fuzz fuzz-smoke

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check oso_gateway tests benchmarks fuzz
	$(BIN)/ruff format --check oso_gateway tests benchmarks fuzz
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy oso_gateway

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/oso-gateway demo
	$(BIN)/oso-gateway demo --flow pull

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Coverage-guided fuzzing (atheris): every target briefly (CI), or one target for longer, e.g.
# `make fuzz FUZZ_TARGET=open FUZZ_ARGS=-max_total_time=3600` (docs/security.md §4).
FUZZ_TARGET ?= sealed
FUZZ_ARGS   ?= -max_total_time=600 -timeout=10 -rss_limit_mb=2048
fuzz-smoke: $(STAMP)
	$(BIN)/python -m fuzz --smoke 6

fuzz: $(STAMP)
	$(BIN)/python -m fuzz $(FUZZ_TARGET) $(FUZZ_ARGS)

docs: $(STAMP)
	$(BIN)/oso-gateway errors --markdown > docs/errors.md

pki: $(STAMP)
	$(BIN)/oso-gateway pki init-dev --out certs/dev --force

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
