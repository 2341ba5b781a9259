# The two commands of the README: `make run` and `make test`. Both install first, so either works
# as the very first command on a fresh machine with only Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install tools run test contract-test clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/agentos-session serve

# The smoke-script test drives curl and jq; install them from Debian's packages if missing.
tools:
	@command -v curl >/dev/null && command -v jq >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq curl jq >/dev/null)

test: install tools
	$(BIN)/pytest -q

contract-test: install
	$(BIN)/pytest -q -m contract --parity-report parity-report.md

clean:
	rm -rf $(VENV) .pytest_cache
