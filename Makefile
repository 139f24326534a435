# Every target builds and uses a local virtualenv, so they work on a fresh machine.
# TF_PACKAGE picks the TensorFlow flavour: tensorflow-cpu (small; the default) or tensorflow (GPU).
PYTHON ?= python3
VENV ?= .venv
TF_PACKAGE ?= tensorflow-cpu
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TF_PACKAGE)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv venv-backends demo test test-unit test-fast test-backends lint bench torture clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,report,search]' '$(TF_PACKAGE)>=2.16'
	touch $(STAMP)

venv: $(STAMP)

# Keras' other two backends, each in a venv of its own without TensorFlow (CPU wheels): what
# `make test-backends` runs the exact-resume suites under. TORCH_PACKAGE is pinned to the CPU build.
TORCH_PACKAGE ?= torch==2.13.0
JAX_PACKAGE ?= jax[cpu]
$(VENV)-jax/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)-jax
	$(VENV)-jax/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' '$(JAX_PACKAGE)'
	touch $@
$(VENV)-torch/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)-torch
	$(VENV)-torch/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' '$(TORCH_PACKAGE)'
	touch $@

venv-backends: $(VENV)-jax/.installed $(VENV)-torch/.installed

# The tests marked `backends` (exact resume at epoch ends and inside epochs, signal -> 75 -> resume,
# kill -9, CANDLE's four steps), run under each backend in its venv; in the torch venv tests/torch too.
# A venv that cannot be built (no wheel for this machine) is a skip that says why, or, with
# CANDLE_RESTART_REQUIRE_BACKENDS=1 (.ci/run), a failure.
BACKEND_TESTS = $(shell grep -rlE 'mark\.backends' tests --include='test_*.py' | sort)
test-backends:
	@for b in jax torch; do \
	  if ! $(MAKE) --no-print-directory $(VENV)-$$b/.installed; then \
	    if [ -n "$$CANDLE_RESTART_REQUIRE_BACKENDS" ]; then echo "test-backends: FAILED: $$b: its venv could not be built"; exit 1; fi; \
	    echo "test-backends: SKIPPED $$b: its venv could not be built (no $$b wheel for this machine?)"; continue; \
	  fi; \
	  extra=""; if [ $$b = torch ] && [ -d tests/torch ]; then extra=tests/torch; fi; \
	  KERAS_BACKEND=$$b $(VENV)-$$b/bin/python -m pytest -q -rs --durations=10 -m backends $(BACKEND_TESTS) || exit 1; \
	  if [ -n "$$extra" ]; then KERAS_BACKEND=$$b $(VENV)-$$b/bin/python -m pytest -q -rs $$extra || exit 1; fi; \
	done

demo: venv
	rm -rf demo-run
	$(VENV)/bin/candle-restart sweep run configs/demo.yaml
	$(VENV)/bin/candle-restart report demo-run

# The test tiers, each test's set by rule (tests/helpers/tiering.py): unit (no process, no TensorFlow),
# process (processes, no TensorFlow), tf, cluster (Slurm, FUSE, a second host, Chromium).
# `make test` runs them in that order (tests/tiers.sh) and stops at the first that fails (pytest's 5,
# "no test selected", passes: a checkout may hold no test of a tier).
# The tiers of XDIST_TIERS run on two pytest-xdist workers (TensorFlow with one intra-op thread
# each): they overlap the waits (on children, Slurm, FUSE, Chromium). xdist_groups are set by rule
# (tiering.xdist_group): the Slurm tests run one after another on one worker, the FUSE ones on one.
# XDIST_TIERS="process tf cluster" also halves the tf tier, but the load of the second worker makes
# tests/keras/test_pacing.py's overhead-target test (load-sensitive) fail in about half the runs.
# The tiers of BESIDE start with the tier before them and run beside it (the cluster tier waits on
# Slurm, FUSE and Chromium, not on the CPUs the tf tier trains on); BESIDE= runs all in turn.
TIERS := unit process tf cluster
PYTEST_TIER = $(PY) -m pytest -q -rs --durations=10 -m
XDIST ?= -n 2 --dist loadgroup
XDIST_TIERS ?= process cluster
BESIDE ?= cluster
test: venv
	@PY="$(PY)" XDIST="$(XDIST)" XDIST_TIERS="$(XDIST_TIERS)" BESIDE="$(BESIDE)" bash tests/tiers.sh $(TIERS)

test-unit: venv
	$(PYTEST_TIER) unit

test-fast: venv
	$(PYTEST_TIER) unit
	$(PYTEST_TIER) process $(XDIST)

# ANY_CHECK=--check makes the count of `Any` (goal <= 15 per 1000 lines) fail the target over its goal.
ANY_CHECK ?=
lint: venv
	$(VENV)/bin/ruff check candle_restart tests bench workflows
	$(VENV)/bin/mypy candle_restart bench
	$(VENV)/bin/mypy tests
	$(VENV)/bin/lint-imports --no-logo
	$(PY) tests/any_count.py $(ANY_CHECK)

# The fault-injection suite at full size (200 kill -9 trials on real training, 10x the property
# examples, ...); prints a table of trials and data lost, which must be 0.
torture: venv
	mkdir -p test-artifacts && rm -f test-artifacts/torture.jsonl
	CANDLE_RESTART_TORTURE_SCALE=10 CANDLE_RESTART_CRASH_TRIALS=200 CANDLE_RESTART_TF_KILL_TRIALS=200 \
	CANDLE_RESTART_TORTURE_REPORT=$(CURDIR)/test-artifacts/torture.jsonl \
	$(PY) -m pytest -q -rs tests/fault tests/ckpt/test_commit.py \
	  tests/keras/test_resume_processes.py::test_kill_minus_9_of_training_during_saves; rc=$$?; \
	$(PY) tests/fault/summary.py test-artifacts/torture.jsonl && exit $$rc

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info
