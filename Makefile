# The two commands of the README: `make run` (the whole system locally) and `make test`.
.PHONY: setup run test lint bench race clean

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

# The registry and send concurrency suites, long: many rounds and clients (seeded; RACE_SEED=... to vary).
race: setup
	@RACE_ROUNDS=$${RACE_ROUNDS:-60} RACE_CLIENTS=$${RACE_CLIENTS:-24} .venv/bin/python -m pytest -q -s \
		tests/integration/test_registry_concurrency.py tests/integration/test_registry_faults.py \
		tests/integration/test_send_integrity.py

clean:
	rm -rf .venv .venv-checkov node_modules .sandbox .devhost .azurite .pytest_cache .ruff_cache
