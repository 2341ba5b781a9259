# The two commands of the README: `make run` and `make test`. Both install first, so either works
# as the very first command on a fresh machine with only Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install tools run serve demo lint test contract-test bench bench-quick bench-rss fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The gateway on :8090 with the native service in-process, on the embedded Postgres unless
# AGNO_PG_DSN is set. Set AGNO_LEGACY_URL to put an agno AgentOS behind it (stage `shadow`);
# without one, every route is served natively.
run: install
	$(BIN)/agentos-session gateway --config config/gateway.yaml

# The native service alone, on :8080.
serve: install
	$(BIN)/agentos-session serve

# The real agno AgentOS too, seeded by real agent runs, traffic through the gateway, and where to look.
demo: install
	$(BIN)/python scripts/demo.py

# Tests drive curl and jq (smoke script), headless Chromium (the report page), Prometheus
# (promtool, and a real server for the dashboards and alerts) and docker-compose (`config` of
# docker-compose.session.yml, no daemon needed), and wrk (the benchmark suite's load generator);
# install them from Debian's packages where missing.
TOOLS := curl jq chromium prometheus promtool docker-compose wrk
TOOL_PACKAGES := curl jq chromium prometheus docker-compose wrk
tools:
	@for t in $(TOOLS); do command -v $$t >/dev/null || missing=1; done; \
		[ -z "$$missing" ] || (apt-get update -qq && apt-get install -y -qq $(TOOL_PACKAGES) >/dev/null)

# Static checks (configured in pyproject.toml): ruff's linter and formatter, and mypy on the packages.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install tools lint
	$(BIN)/pytest -q

contract-test: install
	$(BIN)/pytest -q -m contract --parity-report parity-report.md

# The side-by-side benchmark suite (benchmarks/suite.py): AgentOS vs native vs a bare floor, the
# gateway's stages and the comparator, written to benchmarks/results/*.json and docs/benchmarks.md.
# `make bench BENCH_ARGS="--growth"` adds growth to 100k sessions; bench-quick takes about 2 minutes.
BENCH_ARGS ?=
bench: install tools
	$(BIN)/python -m benchmarks.suite $(BENCH_ARGS)

bench-quick: install tools
	$(BIN)/python -m benchmarks.suite --quick $(BENCH_ARGS)

# Issue 12's "RSS flat (within 10 %) over a 60 s run and while legacy stalls" (benchmarks/rss.py):
# VmRSS once a second, native under reads and under writes, and the gateway mirroring every read to
# an AgentOS stopped by SIGSTOP; about 5 minutes, to benchmarks/results/rss.json and docs/benchmarks.md.
# Exits 1 when a run grew past 10 %. `make bench-rss RSS_ARGS=--quick`: 10 s runs, no docs.
RSS_ARGS ?=
bench-rss: install tools
	$(BIN)/python -m benchmarks.rss $(RSS_ARGS)

# The differential fuzzer with another seed or length (`make test` runs seed 20261201, 1,500
# operations): `make fuzz SEED=7 N=5000`. Prints the findings table; fails listing them.
SEED ?= 1
N ?= 1500
fuzz: install
	FUZZ_SEED=$(SEED) FUZZ_N=$(N) $(BIN)/pytest -q -s tests/fuzz/test_fuzz.py

clean:
	rm -rf $(VENV) .pytest_cache
