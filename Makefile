# The two commands of the README: `make run` and `make test`. Both install first, so either works
# as the very first command on a fresh machine with only Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test contract-test unit-test clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/agentos-session serve

test: install
	$(BIN)/pytest -q

contract-test: install
	$(BIN)/pytest -q -m contract

clean:
	rm -rf $(VENV) .pytest_cache
