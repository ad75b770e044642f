# Two commands work on a fresh machine (Python 3.11 and Go are all they need):
#   make run    the product: a local control plane, the operator, the examples
#   make test   lint, types, unit and e2e tests against a real API server
# Everything built or downloaded lives outside the checkout, under $(KUBENOVA_CACHE).

KUBENOVA_CACHE ?= $(HOME)/.cache/kubenova
export KUBENOVA_CACHE
VENV ?= $(KUBENOVA_CACHE)/venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: deps run test lint unit e2e fuzz chaos crds docs controlplane image bench clean-cache

$(STAMP): pyproject.toml
	@mkdir -p $(KUBENOVA_CACHE)
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV)"
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# The venv is shared by checkouts (it holds the dependencies); the package is installed
# editable, so make sure it points at this checkout and not another (a CI clone, a
# worktree) before running anything.
deps: $(STAMP)
	@$(PY) -c 'import sys, kubenova_e2e; sys.exit(not kubenova_e2e.__file__.startswith("$(CURDIR)/"))' \
	  2>/dev/null || $(PY) -m pip install --quiet --no-deps -e .

run: deps
	$(PY) -m kubenova_e2e demo

# The Go peers are built (cached, with progress) before pytest starts, so a cold
# `make test` never depends on a build fitting inside a test's timeout.
test: controlplane
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m kubenova_operator.api.crdgen --check
	$(PY) -m pytest -p no:cacheprovider -ra tests

unit: deps
	$(PY) -m pytest -p no:cacheprovider -ra tests/unit

e2e: controlplane
	$(PY) -m pytest -p no:cacheprovider -ra tests/e2e

# Property-based fuzzing of Tenant and Project specs against the real API server and
# operator, with more examples than `make e2e` runs (KUBENOVA_FUZZ_EXAMPLES, 150 there).
fuzz: controlplane
	KUBENOVA_FUZZ_EXAMPLES=$${KUBENOVA_FUZZ_EXAMPLES:-1000} \
	  $(PY) -m pytest -p no:cacheprovider -ra -s tests/e2e/test_fuzz.py

# Faults at scale: random kill -9 of the operator (KUBENOVA_CHAOS_KILLS), one API server
# and one etcd restart, during a build of KUBENOVA_CHAOS_TENANTS tenants with a Project
# and a KubeConfigRequest each (tests/e2e/test_faults.py; `make test` runs 8 and 3).
chaos: controlplane
	KUBENOVA_CHAOS_TENANTS=$${KUBENOVA_CHAOS_TENANTS:-200} KUBENOVA_CHAOS_KILLS=$${KUBENOVA_CHAOS_KILLS:-20} \
	  $(PY) -m pytest -p no:cacheprovider -ra -s tests/e2e/test_faults.py -k test_chaos

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

crds: deps
	$(PY) -m kubenova_operator.api.crdgen
	$(PY) -m kubenova_operator.api.docgen

# The docs site (mkdocs + Material) into site/; `make test` builds it --strict too
# (tests/unit/test_docs_site.py). `$(PY) -m mkdocs serve` to preview while writing.
docs: deps
	$(PY) -m mkdocs build --strict

# The benchmark (docs/benchmarks.md): N = 50, 100, 250, 500 against a raw server-side-apply
# baseline, ~20 min on 2 cores; it rewrites docs/benchmarks.md, .json and the plots.
# BENCH_ARGS=--quick for N = 25, 50 (written under the cache), or e.g. "--n 100 --profile".
bench: controlplane
	$(PY) -m kubenova_e2e bench $(BENCH_ARGS)

controlplane: deps
	$(PY) -m kubenova_e2e build

# The operator image with podman, on a stand-in Python base (docs/install.md#container-image).
image: deps
	$(PY) -m kubenova_e2e image

clean-cache:
	rm -rf $(KUBENOVA_CACHE)
