# Two commands on a fresh machine: `make demo` and `make test` (README). Both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test lint chromium screenshots

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

static/vendor/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	$(PY) -m web.vendor
	touch $@

setup: $(VENV)/.installed static/vendor/.installed

chromium:
	@[ -x /usr/bin/chromium ] || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

demo: setup
	$(VENV)/bin/callbridge demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Test processes at once (pytest-xdist): the suite waits on servers and browsers more than it
# computes, so three share two CPUs well (13 min instead of 16+ on 2 vCPUs). 1: one process.
TEST_WORKERS ?= 3

test: setup chromium lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --durations=15

screenshots: setup chromium  # README's images, taken by the browser tests
	CALLBRIDGE_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q tests/browser
