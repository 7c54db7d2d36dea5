# Everything a fresh machine needs: `make demo` and `make test` build the venv
# themselves, so only Python 3.11+ and make must be installed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest browser proto bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP) browser lint typecheck pytest

# The UI tests drive Debian's Chromium (never a downloaded browser): installed
# here when missing and we are root (as on CI); elsewhere they skip and say so.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make: $(CHROMIUM) is missing and we are not root: the UI tests will skip (sudo apt-get install chromium)"; \
		fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check runtime tests benchmarks examples
	$(VENV)/bin/ruff format --check runtime tests benchmarks examples
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

# Regenerates the committed betterproto stubs from proto/.
proto: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) proto/regenerate.py runtime/protocol/_generated

# `make bench BENCH_ARGS="--quick --peer-python benchmarks/peers/.venv-dagster/bin/python"`;
# benchmarks/peers/setup_dagster.sh makes that Dagster venv.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
