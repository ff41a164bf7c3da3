# `make run` and `make test` do all the set-up on a fresh clone: virtual environment,
# install, the MUSE SavedModel export (cached, keyed by the weights' hash).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,train]"
	touch $(STAMP)

setup: $(STAMP)
	$(PY) -m worker export-muse

run: setup
	$(PY) -m worker demo

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not chaos and not slow"

lint: $(STAMP)
	$(PY) -m ruff check worker tests bench experiments

bench: setup
	$(PY) bench/encoder.py
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) .cache
