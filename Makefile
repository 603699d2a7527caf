# Every command of the project. On a fresh machine only python3 and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
# Where `make pyz` writes the zipapp; another path: `make pyz PYZ=/tmp/x/lanchat.pyz`.
PYZ := dist/lanchat.pyz
# The web client's files too (and their folder: a file added or removed changes it).
SOURCES := $(shell find lanchat -name '*.py' -o -path 'lanchat/web/static*')
# Fixed so that two builds of the same sources give the same bytes.
SOURCE_DATE_EPOCH := 1764000000
export SOURCE_DATE_EPOCH

.PHONY: run test pyz lint bench bench-quick clean venv

run: $(PYZ)
	$(PYTHON) $(PYZ) server $(ARGS)

test: $(PYZ)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

pyz: $(PYZ)

venv: $(READY)

$(READY): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Staged in a fresh temporary folder and moved into place at once, so two builds may run
# side by side.
$(PYZ): $(READY) $(SOURCES)
	@mkdir -p "$(dir $(PYZ))" build
	@stage=$$(mktemp -d build/stage.XXXXXX) && \
	  mkdir "$$stage/site-packages" && \
	  cp -r lanchat "$$stage/site-packages/" && \
	  find "$$stage/site-packages/lanchat" -name __pycache__ -type d -prune -exec rm -rf {} + && \
	  $(BIN)/shiv --site-packages "$$stage/site-packages" --reproducible -e lanchat.__main__:main \
	    -p '/usr/bin/env python3' -o "$$stage/lanchat.pyz" >/dev/null && \
	  mv "$$stage/lanchat.pyz" "$(PYZ)" && rm -rf "$$stage"
	@echo "built $(PYZ) ($$(wc -c < "$(PYZ)") bytes)"

lint: $(READY)
	$(BIN)/ruff check lanchat tests bench
	$(BIN)/ruff format --check lanchat tests bench
	$(BIN)/mypy

bench: $(PYZ)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(PYZ)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
