# Everyday commands. `make check` is what a change must pass before it is committed.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install lint format test bench check

install:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[all,dev]'

lint:
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

test:
	$(PY) -m pytest

bench:
	$(PY) benchmarks/registry.py
	$(PY) benchmarks/serve.py

check: lint test
