# The two commands of the README: `make run` (the whole system locally) and `make test`.
.PHONY: setup run test lint bench clean

setup:
	@bash scripts/setup.sh

# Options go through: make run ARGS="--fresh" (or --in-memory, --port 7072, ...).
run: setup
	@.venv/bin/python -m devhost run $(ARGS)

test: setup
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/python -m pytest -q

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	@.venv/bin/python -m bench

clean:
	rm -rf .venv .venv-checkov node_modules .sandbox .devhost .azurite .pytest_cache .ruff_cache
