# HiSem for QGIS — every entry point a developer or CI needs.
#   make demo    set up, then caption a synthetic town through qgis_process and export its map (demo-out/)
#   make test    set up when needed, then one pytest run (backend + plugin, real QGIS offscreen)
#   make setup   apt packages, .venv, pinned Python packages, editable backend (idempotent)
#   make lint    ruff
#   make bench   benchmarks; figures printed and written to bench-out/
#   make plugin  hisem_qgis.zip for QGIS's "Install from ZIP"
#   make openapi regenerate docs/openapi.json from the service code
#   make screenshot  docs/screenshots/dock.png: the real QGIS under Xvfb, the dock and results
#   make eval-real  the default model (or MODEL=id|folder) on every real data set: docs/real-imagery.md, build/eval-real/
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

.PHONY: help setup test lint bench demo plugin clean train-default openapi screenshot eval-real real-backgrounds

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

bench: setup real-backgrounds
	@mkdir -p bench-out
	$(RUN_ENV) $(VENV)/bin/hisem bench train -o bench-out/train.json
	$(RUN_ENV) $(VENV)/bin/hisem bench engine -o bench-out/engine.json
	$(RUN_ENV) $(VENV)/bin/hisem bench caption -o bench-out/caption.json
	$(RUN_ENV) $(VENV)/bin/hisem bench serve -o bench-out/serve.json
	$(RUN_ENV) $(VENV)/bin/hisem bench synth --real $(REAL_BACKGROUNDS)/joplin-pre -o bench-out/synth.json
	@echo "figures in bench-out/; docs/benchmarks.md records them with the machine they came from"

# The whole chain as an analyst's script would run it: a synthetic town in two CRSs -> `hisem serve`
# -> qgis_process hisem:caption_changes -> hisem:export_map. qgis_process finds the plugin through
# QGIS_PLUGINPATH (the repository root holds hisem_qgis/) and `plugins enable` in the sandbox profile.
# With no model installed (resources/models/ is made by `make train-default`), a tiny model is trained
# for the demo and the demo says so. One shell, so that the trap stops the backend on any failure.
DEMO := $(CURDIR)/demo-out
DEMO_ENV := $(RUN_ENV) QGIS_PLUGINPATH=$(CURDIR)
QGIS_PROCESS := qgis_process.bin
# Line-buffered, so that progress shows as it happens and a crash does not swallow what was printed.
QGIS_PROCESS_RUN := stdbuf -oL -eL $(QGIS_PROCESS) run
QUIET_QGIS := grep --line-buffered -v -e '^QStandardPaths' -e 'setapi() is deprecated'
demo: setup
	@set -euo pipefail; \
	export $(DEMO_ENV); \
	mkdir -p "$$HOME" "$$QGIS_CUSTOM_CONFIG_PATH" $(DEMO); \
	echo "demo: 1/5 a synthetic town, 1000 m a side: before in EPSG:32633, after warped to EPSG:3857"; \
	$(VENV)/bin/hisem synth --scene $(DEMO)/town --size-m 1000 --seed 7 --after-crs EPSG:3857 --overwrite; \
	serve_models=(); \
	if [ "$$($(VENV)/bin/hisem models --json | $(PY) -c 'import json,sys; print(len(json.load(sys.stdin)["models"]))')" = 0 ]; then \
		echo "demo: NO MODEL INSTALLED (the default, hisem-lite-hybrid-v2, comes from 'make train-default')"; \
		echo "demo: training a tiny stand-in model for this demo: its captions are NOT meaningful"; \
		if [ ! -f $(DEMO)/models/demo-tiny/model.json ]; then \
			$(VENV)/bin/hisem synth --out $(DEMO)/tiny-data --pairs 200 --size 64 --seed 1 --overwrite --no-progress; \
			$(VENV)/bin/hisem train --data $(DEMO)/tiny-data --preset tiny --out $(DEMO)/tiny-run --epochs 2; \
			$(VENV)/bin/hisem export --model $(DEMO)/tiny-run -o $(DEMO)/models/demo-tiny --id demo-tiny; \
		fi; \
		serve_models=(--models $(DEMO)/models); \
	fi; \
	port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	url=http://127.0.0.1:$$port; \
	echo "demo: 2/5 starting hisem serve at $$url (log: demo-out/serve.log)"; \
	$(VENV)/bin/hisem serve --port $$port --jobs-dir $(DEMO)/jobs "$${serve_models[@]}" >$(DEMO)/serve.log 2>&1 & \
	pid=$$!; \
	trap 'kill -INT $$pid 2>/dev/null && wait $$pid 2>/dev/null; echo "demo: backend stopped"' EXIT; \
	for i in $$(seq 240); do \
		if $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' $$url/v1/health 2>/dev/null; then break; fi; \
		kill -0 $$pid 2>/dev/null || { echo "demo: hisem serve exited:"; tail -20 $(DEMO)/serve.log; exit 1; }; \
		sleep 0.5; \
	done; \
	model=$$($(PY) -c 'import json, sys, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["model"])' $$url/v1/health); \
	echo "demo: model used: $$model"; \
	$(QGIS_PROCESS) plugins enable hisem_qgis >/dev/null 2>&1 || true; \
	$(QGIS_PROCESS) list 2>/dev/null | grep "hisem:caption_changes" >/dev/null \
		|| { echo "demo: qgis_process does not see the hisem_qgis plugin (QGIS_PLUGINPATH=$(CURDIR))"; exit 1; }; \
	extent=$$($(PY) -c 'import sys; from osgeo import gdal; d = gdal.Open(sys.argv[1]); x, w, _, y, _, h = d.GetGeoTransform(); print(f"{x},{x + w * d.RasterXSize},{y + h * d.RasterYSize},{y} [EPSG:32633]")' $(DEMO)/town/before.tif); \
	echo "demo: 3/5 qgis_process run hisem:caption_changes over $$extent"; \
	$(QGIS_PROCESS_RUN) hisem:caption_changes -- BEFORE=$(DEMO)/town/before.tif AFTER=$(DEMO)/town/after.tif \
		"EXTENT=$$extent" BEFORE_DATE=2020-06-01 AFTER_DATE=2024-06-01 BACKEND_URL=$$url \
		OUTPUT=$(DEMO)/changes.gpkg 2>&1 | $(QUIET_QGIS) \
		|| { echo "demo: hisem:caption_changes failed (backend log: demo-out/serve.log)"; exit 1; }; \
	echo "demo: 4/5 qgis_process run hisem:export_map"; \
	$(QGIS_PROCESS_RUN) hisem:export_map -- INPUT=$(DEMO)/changes.gpkg BEFORE=$(DEMO)/town/before.tif \
		AFTER=$(DEMO)/town/after.tif "TITLE=Synthetic town: changes 2020-06-01 → 2024-06-01 ($$model)" \
		OUTPUT_PDF=$(DEMO)/map.pdf OUTPUT_PNG=$(DEMO)/map.png 2>&1 | $(QUIET_QGIS) \
		|| { echo "demo: hisem:export_map failed"; exit 1; }; \
	echo "demo: 5/5 results (model $$model)"; \
	$(PY) -c 'import sys; from osgeo import ogr; ds = ogr.Open(sys.argv[1]); \
		print("changes:", ds.GetLayerByName("changes").GetFeatureCount()); \
		rows = ds.ExecuteSQL(sys.argv[2]); \
		print("\n".join(f"caption {i}: {f.GetField(0)}" for i, f in enumerate(rows, 1))); \
		ds.ReleaseResultSet(rows)' $(DEMO)/changes.gpkg \
		"SELECT caption FROM (SELECT caption, MAX(score) AS s, 0 AS k FROM changes GROUP BY caption \
		UNION ALL SELECT caption, MAX(change_score), 1 FROM tiles WHERE changed = 1 GROUP BY caption) \
		GROUP BY caption ORDER BY MIN(k), MAX(s) DESC LIMIT 3"; \
	for f in changes.gpkg map.pdf map.png; do test -s $(DEMO)/$$f || { echo "demo: $$f is missing"; exit 1; }; echo "demo-out/$$f"; done

# docs/screenshots/dock.png (README): the real QGIS under Xvfb with the plugin's dock and a run's results
# on the map, driven by docs/screenshots/dock_screenshot.py against a backend started here.
SHOT := $(CURDIR)/build/screenshot
screenshot: setup
	@set -euo pipefail; \
	export $(RUN_ENV); \
	mkdir -p "$$HOME" "$$QGIS_CUSTOM_CONFIG_PATH" $(SHOT)/profiles; \
	$(VENV)/bin/hisem synth --scene $(SHOT)/town --size-m 512 --seed 5 --overwrite; \
	port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(VENV)/bin/hisem serve --port $$port --jobs-dir $(SHOT)/jobs >$(SHOT)/serve.log 2>&1 & \
	pid=$$!; \
	trap 'kill -INT $$pid 2>/dev/null && wait $$pid 2>/dev/null' EXIT; \
	for i in $$(seq 240); do \
		$(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
			http://127.0.0.1:$$port/v1/health 2>/dev/null && break; sleep 0.5; \
	done; \
	env -u QT_QPA_PLATFORM HISEM_SHOT_SCENE=$(SHOT)/town HISEM_SHOT_URL=http://127.0.0.1:$$port \
		HISEM_SHOT_OUT=$(CURDIR)/docs/screenshots/dock.png HISEM_SHOT_GPKG=$(SHOT)/dock.gpkg HISEM_SHOT_REPO=$(CURDIR) \
		xvfb-run -a -s "-screen 0 1600x1000x24" qgis --nologo --noversioncheck \
		--profiles-path $(SHOT)/profiles --code docs/screenshots/dock_screenshot.py

# docs/openapi.json is generated from the code; a test fails when it drifts.
openapi: setup
	$(RUN_ENV) $(VENV)/bin/hisem serve --openapi docs/openapi.json

plugin:
	@rm -rf build/plugin && mkdir -p build/plugin
	cp -rL hisem_qgis build/plugin/hisem_qgis
	mkdir -p build/plugin/hisem_qgis/resources && cp -r resources/styles resources/layouts build/plugin/hisem_qgis/resources/
	find build/plugin -name __pycache__ -prune -exec rm -rf {} +
	cd build/plugin && rm -f ../../hisem_qgis.zip && python3 -m zipfile -c ../../hisem_qgis.zip hisem_qgis
	@echo "hisem_qgis.zip (version $(PLUGIN_VERSION))"

# The shipped default model (docs/training.md): 10,000 training pairs (seed 1), 60 % of them on real
# single-date backgrounds from ../shared/data (training material only: the Joplin pre-event tiles
# with their footprints, the post-event tiles, SpaceNet/NEON singles - never an evaluation set), a
# fully synthetic held-out set from a seed never used in training (seed 2), the lite preset with
# cached features, the thresholds chosen on the validation split (hisem calibrate), the model card,
# then the ONNX export with weights.pt into resources/models/ and the real-imagery report.
DEFAULT_MODEL_ID := hisem-lite-hybrid-v2
DEFAULT_WORK ?= build/default-model
DEFAULT_EPOCHS ?= 3
DEFAULT_DEVICE ?= $(shell $(PY) -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')" 2>/dev/null)
SHARED_DATA ?= $(CURDIR)/../shared/data
# Footprints apply to the images of their own folder: the pre-event tiles get them, the post-event
# tiles (houses gone, footprints still there) must not.
REAL_BACKGROUNDS := $(DEFAULT_WORK)/real
REAL_ARGS := --real $(REAL_BACKGROUNDS)/joplin-pre --real $(REAL_BACKGROUNDS)/joplin-post --real $(SHARED_DATA)/real/singles
real-backgrounds:
	@mkdir -p $(REAL_BACKGROUNDS)/joplin-pre $(REAL_BACKGROUNDS)/joplin-post
	@ln -sf $(SHARED_DATA)/real/joplin/pre/*.tif $(SHARED_DATA)/real/joplin/buildings-footprints.geojson \
		$(REAL_BACKGROUNDS)/joplin-pre/
	@ln -sf $(SHARED_DATA)/real/joplin/post/*.tif $(REAL_BACKGROUNDS)/joplin-post/
train-default: setup real-backgrounds
	$(RUN_ENV) $(VENV)/bin/hisem synth --out $(DEFAULT_WORK)/hybrid-train --pairs 10000 --seed 1 \
		--split-fractions 0.95,0.05,0 $(REAL_ARGS) --overwrite
	$(RUN_ENV) $(VENV)/bin/hisem synth --out $(DEFAULT_WORK)/synth-heldout --pairs 2000 --seed 2 \
		--split-fractions 0,0,1 --overwrite
	$(RUN_ENV) $(VENV)/bin/hisem train --data $(DEFAULT_WORK)/hybrid-train --preset lite \
		--out $(DEFAULT_WORK)/run-hybrid --epochs $(DEFAULT_EPOCHS) --batch-size 32 --lr 3e-4 --val-limit 300 \
		--seed 0 --device $(DEFAULT_DEVICE)
	$(RUN_ENV) $(VENV)/bin/hisem calibrate --model $(DEFAULT_WORK)/run-hybrid --data $(DEFAULT_WORK)/hybrid-train \
		--split val -o $(DEFAULT_WORK)/run-hybrid/calibrated.pt --device $(DEFAULT_DEVICE)
	$(RUN_ENV) $(VENV)/bin/hisem card --model $(DEFAULT_WORK)/run-hybrid/calibrated.pt --id $(DEFAULT_MODEL_ID) \
		--heldout $(DEFAULT_WORK)/synth-heldout -o $(DEFAULT_WORK)/card --device $(DEFAULT_DEVICE)
	$(RUN_ENV) $(VENV)/bin/hisem export --model $(DEFAULT_WORK)/run-hybrid/release.pt \
		-o resources/models/$(DEFAULT_MODEL_ID) --id $(DEFAULT_MODEL_ID) --overwrite
	cp $(DEFAULT_WORK)/card/MODEL_CARD.md $(DEFAULT_WORK)/card/metrics.json resources/models/$(DEFAULT_MODEL_ID)/
	$(MAKE) eval-real MODEL=$(DEFAULT_MODEL_ID)

# Real imagery (../shared/data, each set at its stated GSD) through the `hisem caption` path; see
# docs/evaluation.md. MODEL: an installed model id or model folder; "default" is the default model.
MODEL ?= default
eval-real: setup
	@mkdir -p $(SANDBOX)/home $(SANDBOX)/profile
	$(RUN_ENV) $(PY) -m hisem.evaluation.real_report --model $(MODEL) --data-root ../shared/data \
		--out build/eval-real --doc docs/real-imagery.md --no-progress

clean:
	rm -rf build bench-out demo-out hisem_qgis.zip .pytest_cache .ruff_cache $(SANDBOX)
