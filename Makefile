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
# irctest, a public IRC server test suite, run against the IRC gateway (docs/irc.md). Its
# only release on PyPI is 0.1.2, whose sdist does not install (its setup.py reads a file
# it lacks): the sdist is fetched, checked and unpacked, and its dependencies go beside it.
IRCTEST := $(VENV)/irctest-0.1.2
IRCTEST_URL := https://files.pythonhosted.org/packages/9d/83/d42dc6490c06ca31a20b443633e71833bcc86f909999ef1bd213231f21d1/irctest-0.1.2.tar.gz
IRCTEST_SHA256 := bc37d4e9e0ad926be039431d029e23b1d93813d75df8ed49be144a639c8dfd37

.PHONY: run test pyz lint bench bench-quick clean venv irctest irctest-suite

run: $(PYZ)
	$(PYTHON) $(PYZ) server $(ARGS)

test: $(PYZ) $(IRCTEST)/.ready
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The irctest results table (tests/test_irc_irctest.py checks it is the expected one).
irctest: $(PYZ) $(IRCTEST)/.ready
	$(BIN)/python tests/irctest_run.py $(IRCTEST) --pyz $(PYZ)

irctest-suite: $(IRCTEST)/.ready

# Made in a fresh temporary folder and moved into place at once.
$(IRCTEST)/.ready: $(READY) tests/irctest-requirements.txt
	@stage=$$(mktemp -d $(VENV)/irctest.XXXXXX) && trap 'rm -rf "$$stage"' EXIT && \
	  $(BIN)/python -c 'import hashlib, sys, urllib.request; \
	    data = urllib.request.urlopen(sys.argv[1], timeout=120).read(); \
	    digest = hashlib.sha256(data).hexdigest(); \
	    digest == sys.argv[2] or sys.exit(f"{sys.argv[1]}: sha256 {digest}, expected {sys.argv[2]}"); \
	    open(sys.argv[3], "wb").write(data)' $(IRCTEST_URL) $(IRCTEST_SHA256) "$$stage/sdist.tar.gz" && \
	  tar -xzf "$$stage/sdist.tar.gz" -C "$$stage" && \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    --target "$$stage/irctest-0.1.2/deps" -r tests/irctest-requirements.txt && \
	  touch "$$stage/irctest-0.1.2/.ready" && \
	  rm -rf $(IRCTEST) && mv "$$stage/irctest-0.1.2" $(IRCTEST)
	@echo "irctest 0.1.2 in $(IRCTEST)"

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
