# The two commands: `make demo` runs the product, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
export PORT

.PHONY: demo test lint typecheck format serve bench bench-large clean

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

# The benchmarks a user runs to see how fast remedium is on this machine (each builds its own
# inputs; docs/imports.md "Benchmarks"). bench-large: the 100,000-device and 1.5M-finding sizes.
bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/imports.py --inputs real --sizes 150000 --formats grype,trivy,nessus,cyclonedx --databases sqlite --stages command --reimport
	$(BIN)/python benchmarks/reimport.py --organisation demo --findings 132060 --format trivy
	$(BIN)/python benchmarks/scale.py --sizes 10000
	$(BIN)/python benchmarks/pages.py --devices 10000
	$(BIN)/python benchmarks/load.py --seconds 20

bench-large: $(STAMP)
	$(BIN)/python benchmarks/scale.py --sizes 100000
	$(BIN)/python benchmarks/pages.py --devices 100000 --databases sqlite,postgresql
	$(BIN)/python benchmarks/reimport.py --populated 100000 --findings 150000 --format trivy
	$(BIN)/python benchmarks/imports.py --inputs real --sizes 150000,1500000 --formats grype,trivy,nessus,cyclonedx --stages command --reimport

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache test-artifacts node_modules
