# The two commands a person needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 0.0.0.0
PORT ?= 8080
MODELS_DIR ?= models
# Longest build first, so the last to start is a short one (text about 100 s here, faces 6 s).
DEFAULT_MODELS := text sketch pose objects cutout efficientnet-lite0 lite0-embed faces
MANIFESTS := $(foreach m,$(DEFAULT_MODELS),$(MODELS_DIR)/$(m)/manifest.json)
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# TensorFlow converts three default models' weights to float ONNX at build time only, in a
# virtualenv of its own: it is heavy (~2 GB) and must never meet torch in $(VENV) or the box.
TF_VENV ?= .venv-tf
TF_PY := $(TF_VENV)/bin/python
TF_STAMP := $(TF_VENV)/.installed
TF_MODELS := objects pose cutout
TF_FLOATS := $(foreach m,$(TF_MODELS),$(MODELS_DIR)/.build/$(m).fp32.onnx)
# tensorflow-cpu has x86_64 wheels only; on arm64 (a Raspberry Pi) the plain package is CPU-only.
TENSORFLOW := $(if $(filter x86_64 amd64,$(shell uname -m)),tensorflow-cpu,tensorflow)==2.21.0
TF_PACKAGES := '$(TENSORFLOW)' 'tf2onnx==1.17.0' 'onnx==1.23.2' 'onnxruntime==1.32.0' \
	'numpy==2.4.6' 'protobuf==7.36.2' 'pillow==13.0.0' 'scikit-image==0.26.0'

# Bundles build side by side, one per core, but never more than one per 4 GB of free memory:
# calibration keeps activations in memory (text's build peaks at 2.9 GB resident, sketch's at
# 1.9 GB, measured with /usr/bin/time -v), so a 4-8 GB Raspberry Pi builds one at a time.
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); \
	m=$$(awk '/MemAvailable/ {print int($$2 / 4194304)}' /proc/meminfo 2>/dev/null); \
	[ "$${m:-1}" -lt 1 ] && m=1; [ "$$n" -lt "$${m:-1}" ] && echo $$n || echo $${m:-1})
MAKEFLAGS += --jobs=$(JOBS)
# SEARCH=full: every INT8 candidate for every bundle, ignoring tools/plans.py.
SEARCH_FLAG := $(if $(filter full,$(SEARCH)),--search)

# Nothing phones home: onnxruntime's pip build looks up a telemetry host unless this is set.
export ORT_DISABLE_TELEMETRY := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-fast lint models clean-models bench help install uninstall kserve-venv \
	tf-venv clients-venv

help:
	@echo "make run    serve the default models on http://$(HOST):$(PORT)/"
	@echo "make test   install everything and run the whole test suite"
	@echo "make bench  the box against bare onnxruntime and other servers (tools/bench/servers.py)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# setuptools warns that an editable install can be shadowed by a folder of the same name:
	@# not this checkout's layout, and nothing an owner can act on.
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[tools,provenance]'
	@touch $@

# The box signs its results (the provenance extra) from the first `make run`. The test tools
# come only with `make test`, after the bundles are built: pip must not change
# the packages under a build that is running.
$(TEST_STAMP): $(STAMP)
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[tools,provenance,test]'
	@touch $@

# One bundle per run, so a bundle waits only for its own float source and bundles build in
# parallel.
$(MODELS_DIR)/%/manifest.json: | $(STAMP)
	$(PY) tools/default_models.py --out $(MODELS_DIR) --only $* $(SEARCH_FLAG)

$(TF_STAMP):
	@test -x $(TF_PY) || $(PYTHON) -m venv $(TF_VENV)
	$(TF_PY) -m pip install --quiet --upgrade pip
	$(TF_PY) -m pip install --quiet $(TF_PACKAGES)
	@touch $@

tf-venv: $(TF_STAMP)

# The float ONNX of a TensorFlow-sourced model, checked against TensorFlow's own output.
# TensorFlow's own notices (oneDNN, deprecations, the custom op tf2onnx leaves for the build
# to replace) go to a log beside the file, shown only when the conversion fails.
$(TF_FLOATS): $(MODELS_DIR)/.build/%.fp32.onnx: | $(TF_STAMP)
	@mkdir -p $(MODELS_DIR)/.build
	$(TF_PY) tools/tf_models.py --out $(MODELS_DIR)/.build --only $* \
		2> $(MODELS_DIR)/.build/$*.tf.log || { cat $(MODELS_DIR)/.build/$*.tf.log >&2; exit 1; }

# Their bundles need the float file only when they are built and it is missing: a box given
# built bundles never makes $(TF_VENV) (an order-only prerequisite would be made even then).
# Decided when the Makefile is read, so one make builds $(TF_VENV) once for all three.
tf_float_needed = $(and $(if $(wildcard $(MODELS_DIR)/$(1)/manifest.json),,yes),\
	$(if $(wildcard $(MODELS_DIR)/.build/$(1).fp32.onnx),$(if $(wildcard \
	$(MODELS_DIR)/.build/$(1).source.json),,yes),yes))
$(foreach m,$(TF_MODELS),$(if $(call tf_float_needed,$(m)),$(eval \
	$(MODELS_DIR)/$(m)/manifest.json: $(MODELS_DIR)/.build/$(m).fp32.onnx)))

models: $(STAMP) $(MANIFESTS)

run: models
	$(VENV)/bin/appliance serve --host $(HOST) --port $(PORT) --models-dir $(MODELS_DIR)

test: models
	@$(MAKE) --no-print-directory $(TEST_STAMP)
	$(PY) -m ruff check appliance tools tests
	$(PY) -m pytest

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -m "not slow and not default_models"

lint: $(TEST_STAMP)
	$(PY) -m ruff check appliance tools tests

bench: models
	$(PY) tools/bench/servers.py --model $(MODELS_DIR)/efficientnet-lite0

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

# The client libraries home and camera software uses to reach a "local AI server", from PyPI,
# in a virtualenv of their own (they pin old packages and are never the box's dependencies):
# tests/test_compat_clients.py runs them there against a live server, and skips without it.
# deepstack-sdk declares no dependencies it can install today: its real imports come beside it.
CLIENTS_VENV ?= .venv-clients
clients-venv:
	@test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install --quiet 'deepstack-python==0.9' 'pydoods==1.0.2' \
		pyzmq requests pillow numpy opencv-python-headless matplotlib validators
	$(CLIENTS_VENV)/bin/python -m pip install --quiet --no-deps 'deepstack-sdk==0.2.1'
