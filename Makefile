# The two commands of the README: `make run` (the whole system locally) and `make test`.
.PHONY: setup run test lint bench race mutate clean

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

# Mutation testing of the pure modules against tests/unit (about 30 minutes on 2 busy cores; not part of
# `make test`). Prints the survivors and the score per module; fails under 90%.
# One module: make mutate MODULE=templates (its mutmut log is mutants/run.log).
MUTATE_MODULES = $(if $(MODULE),pushfuncs/$(MODULE).py,)
mutate: setup
	@rm -rf mutants && mkdir -p mutants
	@echo "mutate: running mutmut (log in mutants/run.log)"
	@.venv/bin/mutmut run --max-children 2 $(if $(MODULE),"pushfuncs.$(MODULE).*",) > mutants/run.log 2>&1 \
		|| { tail -c 3000 mutants/run.log; exit 1; }
	@.venv/bin/python scripts/mutation_report.py --fail-under 90 $(MUTATE_MODULES)

# The registry and send concurrency suites, long: many rounds and clients (seeded; RACE_SEED=... to vary).
race: setup
	@RACE_ROUNDS=$${RACE_ROUNDS:-40} RACE_CLIENTS=$${RACE_CLIENTS:-24} .venv/bin/python -m pytest -q -s --timeout 3600 \
		tests/integration/test_registry_concurrency.py tests/integration/test_registry_faults.py \
		tests/integration/test_send_integrity.py tests/integration/test_concurrency_over_http.py

clean:
	rm -rf .venv .venv-checkov node_modules mutants .sandbox .devhost .azurite .pytest_cache .ruff_cache
