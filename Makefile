# Two commands on a fresh machine:  `make run` (set up + dvc repro)  and  `make test` (set up + tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup tesseract browser postgres check lint run serve test test-e2e test-all plots smoke bench clean-smoke help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(STAMP) tesseract  ## create .venv, install Python deps and tesseract when missing

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# pip's notes about unused local index folders are noise; its own exit status decides
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v '^WARNING: Location'; \
	  test $${PIPESTATUS[0]} -eq 0 || { echo "pip install failed" >&2; exit 1; }
	touch $(STAMP)

tesseract:
	@command -v tesseract >/dev/null || { \
	  echo "installing tesseract-ocr (apt)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null; }
	@tesseract --version 2>&1 | head -1

browser:  ## install Debian's chromium when missing (headless rendering checks of the HTML pages)
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (apt)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@# Debian's launcher script prints a shell warning on some /dev/shm set-ups; the version line is what counts
	@chromium --version 2>/dev/null | head -1

postgres:  ## install Debian's PostgreSQL server when missing (the label store's PostgreSQL test starts one)
	@{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
	  echo "installing postgresql (apt)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1 || command -v initdb

check: setup  ## check params.yaml and every data source in seconds, before anything runs
	python -m tools.check_params

run: setup check  ## build the whole pipeline (dvc repro), print the comparison table and the evaluation summary
	dvc repro
	@python -m Step_5.studies.comparison_table --comparison metrics/comparison.json
	@python -m Step_6.html_report --summary
	@echo "models: models/ · quality: metrics/*.json · run facts: reports/*.json · plots: make plots"

serve: setup  ## the HTTP service and the review page on 127.0.0.1:8000 after `make run` (docs/serving.md)
	python -m Step_7.serve

lint: setup  ## ruff over the code (pyproject.toml [tool.ruff]); the fast tier runs it too
	ruff check .

test: setup  ## the fast tier: unit and component tests on tiny generated data (a few minutes)
	python -m pytest -m "not e2e"

test-e2e: setup browser postgres  ## the end-to-end tier: whole-DAG builds, torchrun, DVC remote, browser, stage CLIs
	python -m pytest -m e2e

test-all: test test-e2e  ## both tiers (what CI runs)

plots: setup  ## every plot of dvc.yaml on one page that works offline (template: plots/offline.html)
	dvc plots show >/dev/null
	@echo "plots: $(CURDIR)/dvc_plots/index.html"

smoke: setup  ## the whole DAG on the tiny profile in a scratch copy under .smoke/
	python -m tools.smoke --dir .smoke

bench: setup  ## performance benchmarks (docs/performance.md)
	python -m bench.run

clean-smoke:
	rm -rf .smoke
