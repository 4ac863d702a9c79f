# school-context: `make report` and `make test` are all a fresh machine needs.
# Run `make` (or `make help`) to list the targets.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
RAW    := data/raw
# make report DATA=<folder> [YEAR=<year>]: your own data, outside DVC (see README)
DATA   ?=
YEAR   ?= $(shell sed -n 's/^year: *\([0-9]*\).*/\1/p' params.yaml)

export JUPYTER_PLATFORM_DIRS := 1
export DVC_NO_ANALYTICS := 1
export PYTHONHASHSEED := 0
# dvc.yaml commands call `python`: make it the project environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install sysdeps data report check test bench lock notebooks-clean clean clean-all

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name school-context --display-name "Python (school-context)" >/dev/null
	touch $(STAMP)

install: $(STAMP) ## Create .venv (pip) and install the project with its dev tools

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

data: $(STAMP) ## Generate the embedded demo region into data/raw (only when absent)
	@if ls $(RAW)/schools.* >/dev/null 2>&1; then echo "$(RAW) already has a schools table: kept as is"; \
	else $(PY) -m analysis.demo.synth --params params.yaml --out $(RAW) --truth data/demo_truth; fi

ifeq ($(strip $(DATA)),)
report: data ## Run the study: demo region via DVC, or `make report DATA=<folder> YEAR=<year>`
	@$(PY) -m analysis.pipeline.preflight
	$(BIN)/dvc repro
	@rm -rf reports/failed/$(YEAR)  # a note of an earlier failed run is stale now
	@echo "Report: reports/$(YEAR)/report.html   Metrics: reports/metrics.json"
else
report: $(STAMP)
	$(PY) -m analysis.pipeline.run --data "$(DATA)" --year "$(YEAR)"
endif

check: $(STAMP) ## Only read and validate your files: make check DATA=<folder> [YEAR=<year>]
	$(PY) -m analysis.pipeline.run --check --data "$(or $(DATA),$(RAW))" --year "$(YEAR)"

test: $(STAMP) sysdeps ## Set up and run the whole test suite
	$(PY) -m pytest

bench: $(STAMP) sysdeps ## Run the benchmarks (on demand; prints medians and ratios)
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
	$(PY) benchmarks/float_noise.py
	$(PY) benchmarks/publish.py

lock: ## Re-pin requirements.lock from a fresh environment (then commit it)
	rm -rf /tmp/school-context-lock && $(PYTHON) -m venv /tmp/school-context-lock
	/tmp/school-context-lock/bin/pip install --quiet -e ".[dev]"
	/tmp/school-context-lock/bin/pip freeze --exclude-editable | sort -f > requirements.lock

.PHONY: deps
deps: $(STAMP) ## Rewrite the src/ deps of dvc.yaml's stages from their imports
	$(PY) -m analysis.pipeline.deps --write

notebooks-clean: $(STAMP) ## Clear outputs and execution counts of the source notebooks (before a commit)
	$(BIN)/jupyter nbconvert --log-level=WARN --ClearOutputPreprocessor.enabled=True --inplace notebooks/*.ipynb

clean: ## Remove pipeline outputs (processed data, reports); keep data/raw and .venv
	rm -rf data/processed/* reports/20* 
	find data/processed -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true

clean-all: clean ## Also remove .venv and the generated demo region
	rm -rf $(VENV) data/demo_truth
	find $(RAW) -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
