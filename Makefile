# school-context: `make report` and `make test` are all a fresh machine needs.
# Run `make` (or `make help`) to list the targets.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
RAW    := data/raw
# make report DATA=<folder> [YEAR=<year>]: your own data, outside DVC (see README)
DATA   ?=
# make data STUDENTS=0: the demo region without its students table (index only, as most
# regions); STUDENTS=1 writes it whatever params.yaml's demo.write_students says
STUDENTS ?=
YEAR   ?= $(shell sed -n 's/^year: *\([0-9]*\).*/\1/p' params.yaml)

# The Python environment every target uses.  By default .venv, created and installed with pip
# on first use.  Your own environment instead, into which make installs nothing:
#   - the active conda environment (CONDA_PREFIX), when it has this project installed from
#     this folder (`conda env create -f environment.yml && conda activate school-context`);
#   - any Python with the project installed: `make <target> PY=<its python>`.
ifeq ($(origin PY),command line)
OWN_PY := $(PY)
else ifneq ($(strip $(CONDA_PREFIX)),)
OWN_PY := $(shell "$(CONDA_PREFIX)/bin/python" -c 'import analysis, pathlib, sys; \
	sys.exit(pathlib.Path(analysis.__file__).resolve().parents[2] != pathlib.Path.cwd().resolve())' \
	2>/dev/null && echo "$(CONDA_PREFIX)/bin/python")
endif
ifneq ($(strip $(OWN_PY)),)
PY     := $(OWN_PY)
BIN    := $(shell dirname "$$(command -v "$(OWN_PY)")")
SETUP  := own-env
else
BIN    := $(VENV)/bin
PY     := $(BIN)/python
SETUP  := $(STAMP)
endif

export JUPYTER_PLATFORM_DIRS := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
# dvc.yaml commands call `python`: make it the project environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install own-env sysdeps data report check test test-fast lint bench lock notebooks-clean clean \
	clean-all

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@if [ -n "$$CONDA_PREFIX" ]; then echo "note: the active conda environment ($$CONDA_PREFIX)" \
	  "does not have this project installed from this folder; setting up $(VENV) with pip"; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name school-context --display-name "Python (school-context)" >/dev/null
	touch $(STAMP)

# Your own environment (conda, or PY=): only checked, never installed into.
own-env:
	@$(PY) -c 'import analysis' 2>/dev/null || { echo "$(PY) does not have this project" \
	  "installed: \`$(PY) -m pip install -e .\` first (or run make without PY= for .venv)"; \
	  exit 1; }

install: $(SETUP) ## Create .venv (pip) with the project and dev tools (your own env: only checked)

# Debian packages some tests and benchmarks use: R with lme4 (the reference for the mixed
# models) and headless Chromium (the report's browser test).  Installed with apt where it is
# available and we may (root or password-less sudo); without them those tests fail and say why.
SYSDEPS := r-base-core r-cran-lme4 chromium chromium-driver
sysdeps: ## Install the Debian packages (R + lme4, Chromium) with apt, where available
	@if command -v Rscript >/dev/null 2>&1 && Rscript -e 'library(lme4)' >/dev/null 2>&1 \
	    && command -v chromium >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	    echo "note: no apt-get here; install R with lme4 and Chromium yourself, or the lme4 and browser tests fail"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
	    ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      --no-install-recommends $(SYSDEPS) >/dev/null ) \
	    || echo "warning: apt could not install $(SYSDEPS); the lme4 and browser tests will fail"; fi

data: $(SETUP) ## Generate the demo region into data/raw if absent (STUDENTS=0: no students table)
	@if ls $(RAW)/schools.* >/dev/null 2>&1; then echo "$(RAW) already has a schools table: kept as is"; \
	else $(PY) -m analysis.demo.synth --params params.yaml --out $(RAW) --truth data/demo_truth \
	  $(if $(filter 0,$(STUDENTS)),--no-students,$(if $(filter 1,$(STUDENTS)),--students)); fi

ifeq ($(strip $(DATA)),)
report: data ## Run the study: demo region via DVC, or `make report DATA=<folder> YEAR=<year>`
	@$(PY) -m analysis.pipeline.preflight
	$(PY) -m dvc repro
	@rm -rf reports/failed/$(YEAR)  # a note of an earlier failed run is stale now
	@echo "Report: reports/$(YEAR)/report.html   Metrics: reports/metrics.json"
else
report: $(SETUP)
	$(PY) -m analysis.pipeline.run --data "$(DATA)" --year "$(YEAR)"
endif

check: $(SETUP) ## Only read and validate your files: make check DATA=<folder> [YEAR=<year>]
	$(PY) -m analysis.pipeline.run --check --data "$(or $(DATA),$(RAW))" --year "$(YEAR)"

test: $(SETUP) sysdeps ## Set up and run the whole test suite
	$(PY) -m pytest

test-fast: $(SETUP) ## The unit tier only (no notebook, no DVC, no browser): under 2 minutes
	$(PY) -m pytest -m "not pipeline"

lint: $(SETUP) ## ruff: style and errors (CI runs it)
	$(PY) -m ruff check .

bench: $(SETUP) sysdeps ## Run the benchmarks (on demand; prints medians and ratios)
	$(PY) benchmarks/regional.py
	$(PY) benchmarks/national.py
	$(PY) benchmarks/generator.py
	$(PY) benchmarks/read_csv.py
	$(PY) benchmarks/students.py
	$(PY) benchmarks/downloads.py
	$(PY) benchmarks/context_scale.py
	$(PY) benchmarks/context_recovery.py
	$(PY) benchmarks/mixed_scale.py
	$(PY) benchmarks/ses_link_scale.py
	$(PY) benchmarks/flags_truth.py
	$(PY) benchmarks/flags_truth.py --modes
	$(PY) benchmarks/float_noise.py
	$(PY) benchmarks/publish.py

lock: ## Re-pin requirements.lock from a fresh environment (then commit it)
	rm -rf /tmp/school-context-lock && $(PYTHON) -m venv /tmp/school-context-lock
	/tmp/school-context-lock/bin/pip install --quiet -e ".[dev]"
	/tmp/school-context-lock/bin/pip freeze --exclude-editable | sort -f > requirements.lock

.PHONY: deps
deps: $(SETUP) ## Rewrite the src/ deps of dvc.yaml's stages from their imports
	$(PY) -m analysis.pipeline.deps --write

notebooks-clean: $(SETUP) ## Clear outputs and execution counts of the source notebooks (before a commit)
	$(PY) -m nbconvert --log-level=WARN --ClearOutputPreprocessor.enabled=True --inplace notebooks/*.ipynb

clean: ## Remove pipeline outputs (processed data, reports); keep data/raw and .venv
	rm -rf data/processed/* reports/20* 
	find data/processed -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true

clean-all: clean ## Also remove .venv and the generated demo region
	rm -rf $(VENV) data/demo_truth
	find $(RAW) -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
