# HiSem for QGIS — every entry point a developer or CI needs.
#   make demo    set everything up and show the chain that exists working
#   make test    set up when needed, then one pytest run (backend + plugin, real QGIS offscreen)
#   make setup   apt packages, .venv, pinned Python packages, editable backend (idempotent)
#   make lint    ruff
#   make bench   benchmarks; figures printed and written to bench-out/
#   make plugin  hisem_qgis.zip for QGIS's "Install from ZIP"
#   make openapi regenerate docs/openapi.json from the service code
#   make train-default  reproduce the shipped default model end to end (hours on a CPU; see docs/training.md)

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian's interpreter: the only one that sees python3-qgis and python3-gdal.
SYSTEM_PYTHON := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
APT_PACKAGES := qgis python3-qgis gdal-bin python3-gdal xvfb poppler-utils default-jre-headless
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# QGIS and onnxruntime write profiles and caches under $HOME: keep them out of the user's home.
SANDBOX := $(CURDIR)/.qgis-settings
RUN_ENV := HOME=$(SANDBOX)/home QGIS_CUSTOM_CONFIG_PATH=$(SANDBOX)/profile QT_QPA_PLATFORM=offscreen

PLUGIN_VERSION := $(shell sed -n 's/^version=//p' metadata.txt)

.PHONY: help setup test lint bench demo plugin clean train-default openapi

help:
	@sed -n 's/^#   //p' Makefile

setup: $(STAMP)

# Re-run only when the pins or the backend's metadata change: a second `make setup` takes seconds.
$(STAMP): backend/requirements.txt backend/pyproject.toml
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "Installing Debian packages: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	@# ONE pip command, so that the resolver sees every pin at once (numpy<2 above all).
	$(PY) -m pip install --quiet --disable-pip-version-check -r backend/requirements.txt -e backend
	@$(PY) -c "import qgis.core, osgeo.gdal, torch, numpy; assert numpy.__version__ < '2'" \
		|| { echo "setup: the venv cannot import qgis/osgeo/torch with numpy<2"; exit 1; }
	@touch $@

test: setup
	@mkdir -p $(SANDBOX)/home $(SANDBOX)/profile
	$(RUN_ENV) $(PY) -m pytest tests/backend tests/plugin

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	@mkdir -p bench-out
	$(RUN_ENV) $(VENV)/bin/hisem bench train -o bench-out/train.json
	$(RUN_ENV) $(VENV)/bin/hisem bench engine -o bench-out/engine.json
	$(RUN_ENV) $(VENV)/bin/hisem bench caption -o bench-out/caption.json
	$(RUN_ENV) $(VENV)/bin/hisem bench serve -o bench-out/serve.json
	@echo "figures in bench-out/; docs/benchmarks.md records them with the machine they came from"

# Until the HTTP backend and the plugin's Processing algorithms land, the demo runs the chain that
# exists: synthesise LEVIR-CC-style pairs -> train the tiny preset -> evaluate on the test split.
demo: setup
	@mkdir -p demo-out
	$(RUN_ENV) $(VENV)/bin/hisem synth --out demo-out/synth --pairs 400 --seed 7 --size 64
	$(RUN_ENV) $(VENV)/bin/hisem train --data demo-out/synth --preset tiny --out demo-out/run-tiny \
		--epochs 6 --batch-size 32 --lr 1e-3
	$(RUN_ENV) $(VENV)/bin/hisem evaluate --model demo-out/run-tiny --data demo-out/synth --split test \
		-o demo-out/report.json
	@echo "demo: report written to demo-out/report.json (tiny model, 64 px synthetic pairs)"

# docs/openapi.json is generated from the code; a test fails when it drifts.
openapi: setup
	$(RUN_ENV) $(VENV)/bin/hisem serve --openapi docs/openapi.json

plugin:
	@rm -rf build/plugin && mkdir -p build/plugin
	cp -rL hisem_qgis build/plugin/hisem_qgis
	mkdir -p build/plugin/hisem_qgis/resources && cp -r resources/styles build/plugin/hisem_qgis/resources/
	find build/plugin -name __pycache__ -prune -exec rm -rf {} +
	cd build/plugin && rm -f ../../hisem_qgis.zip && python3 -m zipfile -c ../../hisem_qgis.zip hisem_qgis
	@echo "hisem_qgis.zip (version $(PLUGIN_VERSION))"

# The shipped default model: >= 20,000 synthetic training pairs (seed 1), a held-out test set from a
# seed never used in training (seed 2), the lite preset with cached features, the model card measured
# on held-out synthetic and real data, then ONNX export (fp32 + int8) into resources/models/.
DEFAULT_MODEL_ID := hisem-lite-synthetic-v1
DEFAULT_WORK ?= build/default-model
DEFAULT_EPOCHS ?= 2
DEFAULT_DEVICE ?= $(shell $(PY) -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')" 2>/dev/null)
train-default: setup
	$(RUN_ENV) $(VENV)/bin/hisem synth --out $(DEFAULT_WORK)/synth-train --pairs 23000 --seed 1 \
		--split-fractions 0.913,0.087,0 --overwrite
	$(RUN_ENV) $(VENV)/bin/hisem synth --out $(DEFAULT_WORK)/synth-heldout --pairs 2000 --seed 2 \
		--split-fractions 0,0,1 --overwrite
	$(RUN_ENV) $(VENV)/bin/hisem train --data $(DEFAULT_WORK)/synth-train --preset lite \
		--out $(DEFAULT_WORK)/run-lite --epochs $(DEFAULT_EPOCHS) --batch-size 32 --lr 3e-4 --val-limit 500 \
		--seed 0 --device $(DEFAULT_DEVICE)
	$(RUN_ENV) $(VENV)/bin/hisem card --model $(DEFAULT_WORK)/run-lite --id $(DEFAULT_MODEL_ID) \
		--heldout $(DEFAULT_WORK)/synth-heldout -o $(DEFAULT_WORK)/card --device $(DEFAULT_DEVICE)
	$(RUN_ENV) $(VENV)/bin/hisem export --model $(DEFAULT_WORK)/run-lite/release.pt \
		-o resources/models/$(DEFAULT_MODEL_ID) --id $(DEFAULT_MODEL_ID) --quantize int8
	cp $(DEFAULT_WORK)/card/MODEL_CARD.md $(DEFAULT_WORK)/card/metrics.json resources/models/$(DEFAULT_MODEL_ID)/

clean:
	rm -rf build bench-out demo-out hisem_qgis.zip .pytest_cache .ruff_cache $(SANDBOX)
