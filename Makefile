# One command each: `make test` (everything CI runs) and `make demo` (the offline lab).
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BUILD_ROOT ?= /tmp/underlay-alicloud-sanity
BUILD := $(BUILD_ROOT)/ansible_collections/underlay/alicloud
export PATH := $(VENV)/bin:$(ROOT)/.cache/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.collections
export PYTHONDONTWRITEBYTECODE := 1
PYTEST_ARGS ?=
# Integration tests run in parallel, a file per worker (files share their emulator/cluster fixtures);
# most of their time is spent waiting on subprocesses. 0 runs them in one process.
PYTEST_WORKERS ?= 2

.PHONY: all env test sanity units integration lint demo e2e bench clean

all: test

env:
	@tests/utils/setup_env.sh

test: env sanity units integration lint

# ansible-test needs the collection under ansible_collections/<ns>/<name>/: stage a copy of
# the tracked and untracked-but-not-ignored files there.
sanity: env
	@rm -rf $(BUILD) && mkdir -p $(BUILD)
	@git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C $(BUILD)
	cd $(BUILD) && ansible-test sanity --local --python 3.11 --color no $(SANITY_ARGS)

units: env
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

integration: env
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/integration $(PYTEST_ARGS)

lint: env
	ansible-lint --offline

demo: env
	@tests/utils/demo.sh

# The guide end to end on VM nodes (root, QEMU): E2E_WORLD=FILE, E2E_OUT=DIR (report.json there).
e2e: env
	tests/cluster/vmnodes build
	$(PY) tests/e2e/run.py

bench: env
	$(PY) tests/benchmarks/run_all.py

clean:
	rm -rf .build tests/output .pytest_cache
