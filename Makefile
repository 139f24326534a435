# Every target builds and uses a local virtualenv, so they work on a fresh machine.
# TF_PACKAGE picks the TensorFlow flavour: tensorflow-cpu (small; the default) or tensorflow (GPU).
PYTHON ?= python3
VENV ?= .venv
TF_PACKAGE ?= tensorflow-cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TF_PACKAGE)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo test test-fast lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' '$(TF_PACKAGE)>=2.16'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	rm -rf demo-run
	$(VENV)/bin/candle-restart sweep run configs/demo.yaml

test: venv
	$(PY) -m pytest -q -rs

test-fast: venv
	$(PY) -m pytest -q -rs -m 'not slow'

lint: venv
	$(VENV)/bin/ruff check candle_restart tests bench workflows
	$(VENV)/bin/mypy candle_restart

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache *.egg-info
