# securexport — everything a fresh machine needs comes from here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CACHE  := .cache
STAMP  := $(VENV)/.installed
PYCANON_VENV := .venv-pycanon
# The hash locks (requirements/locks.py says how they are made and checked).
LOCKS  := requirements/runtime.txt requirements/dev.txt

.PHONY: all demo test lint typecheck pytest bench fuzz system-deps vectors pycanon-env clean \
	docs-cli venv lock wheelhouse install

all: test

# Every package from the hash lock (pip and setuptools included), then the project alone, built
# by the locked setuptools: nothing unpinned is fetched, not even an isolated build env.
$(STAMP): pyproject.toml $(LOCKS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Re-resolve the locks after a change to pyproject.toml's dependencies or extras (needs PyPI);
# pins that pyproject.toml still allows are kept.  uv comes hash-pinned from requirements/tools.txt.
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements/tools.txt
	$(BIN)/python requirements/locks.py compile --uv $(BIN)/uv

# The project's wheel and the hash-checked wheels of its runtime dependencies, for this
# machine's Python and platform: `pip install --no-index --find-links wheelhouse securexport`
# then needs no network.  The wheel is built from the sdist (no stale build/ can leak in).
WHEELHOUSE ?= wheelhouse
wheelhouse: $(STAMP)
	rm -rf $(WHEELHOUSE) build/wheelhouse-dist
	$(BIN)/python -m pip download -q --require-hashes --no-deps --only-binary=:all: \
		-r requirements/runtime.txt -d $(WHEELHOUSE)
	$(BIN)/python -m build -q --no-isolation --outdir build/wheelhouse-dist .
	cp build/wheelhouse-dist/securexport-*.whl $(WHEELHOUSE)/
	@echo "wheelhouse: $$(ls $(WHEELHOUSE) | wc -l) wheels in $(WHEELHOUSE)/"

# securexport on your PATH, from the wheelhouse (the hash lock): with pipx when it is there,
# else in a venv of its own, linked into $(BINDIR) when that is on PATH.  NO_PIPX=1 skips pipx.
INSTALL_VENV ?= $(HOME)/.local/share/securexport/venv
BINDIR       ?= $(HOME)/.local/bin
install: wheelhouse
	@set -e; wheel=$$(ls $(WHEELHOUSE)/securexport-*.whl); \
	if [ -z "$(NO_PIPX)" ] && command -v pipx >/dev/null 2>&1; then \
		pipx install --force --pip-args="--no-index --find-links=$(abspath $(WHEELHOUSE))" "$$wheel"; \
		exit 0; \
	fi; \
	$(PYTHON) -m venv --clear "$(INSTALL_VENV)"; \
	"$(INSTALL_VENV)/bin/python" -m pip install -q --no-index --find-links $(WHEELHOUSE) \
		--require-hashes -r requirements/runtime.txt; \
	"$(INSTALL_VENV)/bin/python" -m pip install -q --no-index --no-deps "$$wheel"; \
	case ":$$PATH:" in \
	*":$(BINDIR):"*) mkdir -p "$(BINDIR)"; ln -sf "$(INSTALL_VENV)/bin/securexport" "$(BINDIR)/securexport"; \
		echo "installed: $(BINDIR)/securexport -> $(INSTALL_VENV)/bin/securexport";; \
	*) echo "installed in $(INSTALL_VENV); put it on PATH: export PATH=\"$(INSTALL_VENV)/bin:\$$PATH\"";; \
	esac

# Debian packages the tests use as independent checkers and as a real database server.
system-deps:
	bash scripts/install-system-deps.sh

# External test vectors: fetched, never committed (DESIGN.md §10).
vectors: $(STAMP)
	bash scripts/fetch-vectors.sh $(CACHE)/vectors

# pycanon, the k-anonymity oracle, in an environment of its own (hash-locked), so that its
# pinned numpy, pandas and scipy stay out of $(VENV) (tests/support/pycanon_oracle.py).
$(PYCANON_VENV)/.installed: requirements/pycanon.txt
	rm -rf $(PYCANON_VENV)
	$(PYTHON) -m venv $(PYCANON_VENV)
	$(PYCANON_VENV)/bin/pip install -q --require-hashes -r requirements/pycanon.txt
	touch $@

pycanon-env: $(PYCANON_VENV)/.installed

demo: $(STAMP)
	bash scripts/demo.sh

# lint-imports checks the house's import contract ([tool.importlinter] in pyproject.toml);
# --no-cache: the graph takes a second to build and leaves no cache directory behind.
# locks.py check: the hash locks follow pyproject.toml (offline; `make lock` repairs them).
lint: $(STAMP)
	$(BIN)/ruff check securexport tests scripts requirements
	$(BIN)/ruff format --check securexport tests scripts requirements
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python requirements/locks.py check

typecheck: $(STAMP)
	$(BIN)/mypy

# Branch coverage of the library over the whole suite, with a floor: 91.55% measured when the
# floor was set (2026-12-08).  COV_ARGS= turns it off, e.g. for a single test or room.
COV_FLOOR ?= 90
COV_ARGS  ?= --cov=securexport --cov-branch --cov-report=term:skip-covered --cov-fail-under=$(COV_FLOOR)

pytest: $(STAMP)
	SECUREXPORT_VECTORS=$(CURDIR)/$(CACHE)/vectors $(BIN)/python -m pytest -n 2 --dist loadgroup -q $(COV_ARGS) $(PYTEST_ARGS)

test: system-deps $(STAMP) vectors pycanon-env lint typecheck pytest

bench: system-deps $(STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz.py $(FUZZ_ARGS)

docs-cli: $(STAMP)
	$(BIN)/python scripts/gen_cli_docs.py > docs/cli.md

clean:
	rm -rf $(VENV) $(PYCANON_VENV) $(CACHE) $(WHEELHOUSE) build/wheelhouse-dist demo-output bench-output .mypy_cache .ruff_cache .pytest_cache .hypothesis
