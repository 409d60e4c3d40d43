# The two commands a person needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 0.0.0.0
PORT ?= 8080
MODELS_DIR ?= models
DEFAULT_MODELS := efficientnet-lite0 lite0-embed sketch faces
MANIFESTS := $(foreach m,$(DEFAULT_MODELS),$(MODELS_DIR)/$(m)/manifest.json)
STAMP := $(VENV)/.installed

# Nothing phones home: onnxruntime's pip build looks up a telemetry host unless this is set.
export ORT_DISABLE_TELEMETRY := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-fast lint models clean-models bench help install uninstall kserve-venv

help:
	@echo "make run    serve the default models on http://$(HOST):$(PORT)/"
	@echo "make test   install everything and run the whole test suite"
	@echo "make bench  the box against bare onnxruntime and other servers (tools/bench.py)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[tools,test]'
	@touch $@

$(MODELS_DIR)/%/manifest.json: | $(STAMP)
	$(PY) tools/default_models.py --out $(MODELS_DIR)

models: $(STAMP) $(MANIFESTS)

run: models
	$(VENV)/bin/appliance serve --host $(HOST) --port $(PORT) --models-dir $(MODELS_DIR)

test: models
	$(PY) -m ruff check appliance tools tests
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not default_models"

lint: $(STAMP)
	$(PY) -m ruff check appliance tools tests

bench: models
	$(PY) tools/bench.py --model $(MODELS_DIR)/efficientnet-lite0

clean-models:
	rm -rf $(foreach m,$(DEFAULT_MODELS),$(MODELS_DIR)/$(m)) $(MODELS_DIR)/.build

# As a service: /opt/appliance, /etc/appliance, /var/lib/appliance, the systemd unit.
# Bundles already built in models/ are installed as they are: only missing ones are built
# (with torch, in .venv), so a box given the built bundles never needs the tools extra.
MISSING_MODELS := $(filter-out $(wildcard $(MANIFESTS)),$(MANIFESTS))
install: $(if $(MISSING_MODELS),models)
	DESTDIR="$(DESTDIR)" bash systemd/install.sh install

uninstall:
	DESTDIR="$(DESTDIR)" PURGE="$(PURGE)" bash systemd/install.sh uninstall

# KServe's model server in a virtualenv of its own (it is heavy and never a dependency of the
# box): tools/kserve_model.py serves a bundle there; tests/test_kserve.py uses it when present.
kserve-venv:
	@test -x .venv-kserve/bin/python || $(PYTHON) -m venv .venv-kserve
	.venv-kserve/bin/python -m pip install --quiet 'kserve>=0.21,<0.22'
	.venv-kserve/bin/python -m pip install --quiet --no-deps -e .
	.venv-kserve/bin/python -m pip install --quiet onnxruntime numpy pillow flask waitress gpiozero zeroconf
