# asrk2 top-level targets. `make demo` and `make test` each do all set-up on a
# fresh machine (system tools, Python 3.9 venv, pinned packages, kaldifeat wheel).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Interpreter used to create the venv; found automatically when empty (tools/find_python.sh).
PYTHON ?=

.PHONY: help install test test-fast demo bench lint clean

help:
	@echo "make install   create $(VENV) (Python 3.9) and install asrk2 with pinned dependencies"
	@echo "make test      run the test suite (installs first)"
	@echo "make demo      synthetic corpus -> fbank -> BPE -> conformer CTC -> k2 decoding -> WER"
	@echo "make bench     run every benchmark (after make demo), write bench/RESULTS.md"
	@echo "make lint      flake8 and mypy"
	@echo "make clean     remove the venv (keeps the kaldifeat wheel cache in .cache/)"
	@echo "Use PYTHON=/path/to/python3.9 if no Python 3.9 is found automatically."

install: $(INSTALLED)

$(INSTALLED): constraints.txt setup.cfg setup.py tools/install.sh tools/build_kaldifeat.py tools/install_system_deps.sh
	VENV="$(VENV)" PYTHON="$(PYTHON)" tools/install.sh
	touch $@

# Lint first: flake8 and mypy take about 20 s and catch what tests may not.
test: lint
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

demo: install
	$(MAKE) -C egs/synth/ASR demo PY=$(abspath $(PY))

# The decoding, streaming, export and serving benchmarks measure the demo model;
# `demo` is incremental, so this trains it only when it is missing or stale.
bench: demo
	$(PY) bench/run.py

lint: install
	$(PY) -m flake8 asrk2 local bench tests tools
	$(PY) -m mypy asrk2 local bench tests tools

clean:
	rm -rf $(VENV) build *.egg-info
