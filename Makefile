# Set-up and the two everyday jobs. Every target builds ./.venv itself when it is missing or
# older than the dependency files, so a fresh clone needs nothing but the package index.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export OMP_NUM_THREADS ?= 2

.PHONY: sample test lint clean-venv browser

# pip warns once per package about extra local package indexes; the filter keeps real errors.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]' 2>&1 \
	  | { grep -v "^WARNING: Location 'file:" || true; }
	touch $@

# Main job: the whole pipeline on the bundled sample, then the review queue.
sample: $(VENV)/.installed
	bash scripts/run-sample.sh

# Headless Chromium from Debian's packages: the HTML review report is checked in a real browser.
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the report tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The test suite (what CI runs).
test: $(VENV)/.installed browser
	OMP_NUM_THREADS=1 $(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/ruff check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
