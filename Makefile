# The two commands: `make demo` runs the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
export PORT

.PHONY: demo test lint typecheck format serve bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

## demo: build the demo organisation (SQLite) and serve it on http://127.0.0.1:$(PORT)
demo: $(STAMP)
	$(BIN)/remedium demo

serve: $(STAMP)
	$(BIN)/remedium serve

## test: lint, type-check, the layers, then every test on SQLite and PostgreSQL (installs what it needs)
test: $(STAMP)
	./scripts/install-system-deps.sh
	./scripts/install-test-tools.sh
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_layers.py
	$(BIN)/python scripts/check_sizes.py
	$(BIN)/pytest -n 2 --dist loadgroup

## lint: ruff, then the layering (import-linter contracts in pyproject.toml; docs/architecture.md)
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_layers.py
	$(BIN)/python scripts/check_sizes.py

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache test-artifacts node_modules
