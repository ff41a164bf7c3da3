# `make run` and `make test` do all the set-up on a fresh clone: virtual environment,
# install, the MUSE SavedModel export (cached, keyed by the weights' hash).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench lock clean

# constraints.txt pins every package to the versions CI tested (the image installs the same);
# `make lock` re-resolves pyproject.toml's ranges into it.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,train]" -c constraints.txt
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

lock:
	rm -rf .cache/lock-venv && $(PYTHON) -m venv .cache/lock-venv
	.cache/lock-venv/bin/python -m pip install --upgrade pip
	.cache/lock-venv/bin/python -m pip install -e ".[dev,train]"
	{ echo "# pip constraints: the versions CI tests and the image installs. Regenerate: make lock"; \
	  .cache/lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .cache/lock-venv

clean:
	rm -rf $(VENV) .cache
