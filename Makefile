# Two commands work on a fresh machine (Python 3.11 and Go are all they need):
#   make run    the product: a local control plane, the operator, the examples
#   make test   lint, types, unit and e2e tests against a real API server
# Everything built or downloaded lives outside the checkout, under $(KUBENOVA_CACHE).

KUBENOVA_CACHE ?= $(HOME)/.cache/kubenova
export KUBENOVA_CACHE
VENV ?= $(KUBENOVA_CACHE)/venv
PY := $(VENV)/bin/python
# The venv is shared by checkouts (it holds the dependencies); the package itself is
# installed editable, so the stamp is keyed by this checkout's path too: a fresh clone
# (CI) re-points the editable install at itself instead of importing another tree.
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo "$(CURDIR)") | sha256sum | cut -c1-12)

.PHONY: run test lint unit e2e crds controlplane bench clean-cache

$(STAMP): pyproject.toml
	@mkdir -p $(KUBENOVA_CACHE)
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV)"
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

run: $(STAMP)
	$(PY) -m kubenova_e2e demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m kubenova_operator.api.crdgen --check
	$(PY) -m pytest -p no:cacheprovider -ra tests

unit: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -ra tests/unit

e2e: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -ra tests/e2e

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

crds: $(STAMP)
	$(PY) -m kubenova_operator.api.crdgen

controlplane: $(STAMP)
	$(PY) -m kubenova_e2e build

clean-cache:
	rm -rf $(KUBENOVA_CACHE)
