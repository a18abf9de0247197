# Two commands do all the set-up: `make demo` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export MLOPS_HOME := $(CURDIR)/.mlops

# Columns multiplied in the demo's drifted traffic, per pipeline.
DRIFT_breast_cancer := --shift mean_radius=1.3 --shift mean_texture=1.4
DRIFT_diabetes := --shift bmi=1.25 --shift bp=1.2
DRIFT_wine := --shift proline=1.6 --shift color_intensity=1.5
PIPELINES := breast_cancer diabetes wine
# dg launch runs the selected assets in this process, as `dagster asset materialize -f definitions.py` does;
# -f points it at the repository's code location (the repository is not a dg project).
MATERIALIZE := $(BIN)/dg launch -f definitions.py \
	--config-json '{"loggers": {"console": {"config": {"log_level": "INFO"}}}}'

.PHONY: install lock demo test test-fast lint format ui stop clean

# The environment is the lock, installed by uv without resolving anything: requirements.lock pins every package
# (the CPU build of torch included, which pip's configuration on this kind of machine finds in TORCH_WHEELS).
# `make lock` refreshes it after pyproject.toml changes. The packages are compiled to bytecode at install: uv does
# not by default, and where PYTHONDONTWRITEBYTECODE is set (as on these machines) every process would otherwise
# compile dagster, mlflow and scikit-learn from source on each import.
UV := $(BIN)/uv
UV_VERSION := 0.13.8
TORCH_WHEELS ?= /opt/wheels
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --find-links $(TORCH_WHEELS)

$(UV):
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml requirements.lock | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python --find-links $(TORCH_WHEELS) --no-deps --compile-bytecode \
		-r requirements.lock -e .
	$(UV) pip check --quiet --python $(BIN)/python
	touch $@

lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) --no-header --annotation-style line \
		-o requirements.lock

install: $(VENV)/.installed

# telemetry off, and the run queue admits one automatic retraining per pipeline (mlops_assets/local/instance.py)
$(DAGSTER_HOME)/dagster.yaml: | install
	$(BIN)/mlops-assets instance --home $(DAGSTER_HOME)

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/mlops-assets validate pipelines
	@echo "== 1/5 the whole lifecycle of every pipeline (raw data -> ... -> endpoint), launched with dg"
	$(MATERIALIZE) --assets '*'
	@echo "== 2/5 normal traffic through each endpoint, then a drift report"
	$(foreach p,$(PIPELINES),$(BIN)/mlops-assets replay pipelines/$(p).yaml --rows 300 --seed 1 &&) true
	sleep 2
	$(MATERIALIZE) --assets 'key:"*/drift_report"'
	@echo "== 3/5 drifted traffic, then a drift report that flags it"
	$(foreach p,$(PIPELINES),$(BIN)/mlops-assets replay pipelines/$(p).yaml --rows 300 --seed 2 $(DRIFT_$(p)) &&) true
	sleep 2
	$(MATERIALIZE) --assets 'key:"*/drift_report"'
	@echo "== 4/5 the loop closes by itself: the sensors, ticked through Dagster's API, report each window of"
	@echo "       traffic and retrain toward the drifted one (importance weights); the loop promotes a version"
	@echo "       only if it is better than the champion on the weighted holdout. These bundled models are well"
	@echo "       specified, so weighting rarely helps them: the run keeps the champion (a decision, not a"
	@echo "       failure) and the drift is known from then on, waiting for labels"
	$(BIN)/mlops-assets tick
	$(foreach p,$(PIPELINES),$(BIN)/mlops-assets replay pipelines/$(p).yaml --rows 300 --seed 2 $(DRIFT_$(p)) &&) true
	sleep 2
	$(BIN)/mlops-assets tick
	@echo "== 5/5 what was built: every model at a glance (the portfolio asset), each pipeline, the audit trail"
	$(MATERIALIZE) --assets portfolio
	cat $(MLOPS_HOME)/data/portfolio.md
	$(BIN)/mlops-assets status
	$(BIN)/mlops-assets audit breast_cancer
	$(BIN)/mlops-assets stop
	@echo
	@echo "Open the Dagster UI with: make ui   (or: DAGSTER_HOME=.dagster_home $(BIN)/dagster dev -w workspace.yaml)"

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

stop: install
	$(BIN)/mlops-assets stop

# lint-imports checks the package's layering ([tool.importlinter] in pyproject.toml); --no-cache: it takes under a
# second, and leaves no cache folder in the repository. mypy type-checks rollout/, serving/ and assets/ ([tool.mypy]);
# its cache (.mypy_cache/, which mypy keeps out of git) keeps a second run to seconds.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two workers, each taking whole test files (module fixtures stay in one process); TEST_WORKERS=0: no workers.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The unit tests alone: no process started, no endpoint, no trainer (tests/integration/ holds those).
test-fast: install
	$(BIN)/python -m pytest -q -m "not integration"

clean:
	-$(BIN)/mlops-assets stop
	rm -rf .dagster_home .mlops
