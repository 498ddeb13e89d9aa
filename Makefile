# Two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed


.PHONY: run test lint typecheck imports pytest fuzz acceptance migrate schema schema-check seed jobs clean bench-data bench-dashboard bench-setup bench-load bench-scale-data bench-scale

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m services.cli migrate
	$(BIN)/python -m services.cli seed-demo
	$(BIN)/uvicorn app:app --host 127.0.0.1 --port 8000

migrate: $(STAMP)
	$(BIN)/python -m services.cli migrate

seed: $(STAMP)
	$(BIN)/python -m services.cli seed-demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# The layer contracts in pyproject.toml ([tool.importlinter]): schema -> resolvers -> services -> models.
imports: $(STAMP)
	$(BIN)/lint-imports

schema: $(STAMP)
	$(BIN)/python -m schema.export > schema.graphql
	$(BIN)/python -m schema.export --trusted > trusted-documents.json

schema-check: $(STAMP)
	$(BIN)/python -m schema.export --check schema.graphql
	$(BIN)/python -m schema.export --trusted --check trusted-documents.json

# Prints the 15 slowest tests: the place to look when the run grows past its ten minutes.
pytest: $(STAMP)
	$(BIN)/pytest -q --durations=15

test: lint typecheck imports schema-check pytest

# Only the acceptance suite (also part of `pytest`): real server processes, in development and production, driven by
# clients the project did not write (graphql-ws and graphql-http under Node, npm ci'd into tests/acceptance/node; gql).
acceptance: $(STAMP)
	$(BIN)/pytest -q tests/acceptance

# The schema fuzz at length (`make test` runs it with FUZZ_CASES=3): FUZZ_CASES documents per operation and viewer.
FUZZ_CASES ?= 100
fuzz: $(STAMP)
	FUZZ_CASES=$(FUZZ_CASES) $(BIN)/pytest -q --durations=15 tests/api/test_fuzz.py

clean:
	rm -rf $(VENV) data/*.db data/*.db-* .pytest_cache .mypy_cache .ruff_cache tests/acceptance/node/node_modules

# Benches (not part of the test run). BENCH_DATABASE_URL names a PostgreSQL database the benches may fill.
BENCH_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/bench
bench-data: $(STAMP)
	$(BIN)/python -m bench.generate --url $(BENCH_DATABASE_URL)

bench-dashboard: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m bench.dashboard

# wrk, the C load generator the load benches drive (Debian/Ubuntu package `wrk`).
bench-setup:
	@which wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench-load: $(STAMP) bench-setup
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m bench.load

# Growth 500 -> 5,000 stores: two databases loaded once by bench-scale-data (about 5 and 20 minutes), then measured.
BENCH_SCALE_URLS ?= postgresql+asyncpg://postgres@127.0.0.1:5432/bench500 postgresql+asyncpg://postgres@127.0.0.1:5432/bench5000
bench-scale-data: $(STAMP)
	$(BIN)/python -m bench.generate --url $(word 1,$(BENCH_SCALE_URLS)) --stores 500 --listed 400 --members 200000 --orders 200000
	$(BIN)/python -m bench.generate --url $(word 2,$(BENCH_SCALE_URLS)) --stores 5000 --listed 400 --members 200000 --orders 200000

bench-scale: $(STAMP) bench-setup
	$(BIN)/python -m bench.scale $(BENCH_SCALE_URLS)
