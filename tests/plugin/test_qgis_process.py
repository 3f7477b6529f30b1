"""``qgis_process`` (Debian 3.22: ``qgis_process.bin`` offscreen) finds the plugin and runs both algorithms."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import service_support
from osgeo import gdal, ogr

REPO = Path(__file__).resolve().parents[2]
QGIS_PROCESS = shutil.which("qgis_process.bin")

pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[service_support.Server]:
    srv = service_support.start_server(tmp_path_factory.mktemp("serve"), tiny_model.parent)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh profile, as on a new machine: the plugin found through QGIS_PLUGINPATH and enabled there."""
    root = tmp_path_factory.mktemp("qgis-process")
    (root / "home").mkdir()
    values = dict(os.environ, HOME=str(root / "home"), QGIS_CUSTOM_CONFIG_PATH=str(root / "profile"),
                  QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(REPO))
    values.pop("PYTHONPATH", None)
    enabled = subprocess.run([QGIS_PROCESS, "plugins", "enable", "hisem_qgis"], env=values, capture_output=True,
                             text=True, timeout=120)
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr  # (it exits 1 when already enabled)
    return values


def qgis_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=600)


def run_json(env: dict[str, str], algorithm: str, params: dict[str, str]) -> dict[str, Any]:
    done = qgis_process(env, "--json", "run", algorithm, "--", *(f"{k}={v}" for k, v in params.items()))
    assert done.returncode == 0, f"{algorithm} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout[done.stdout.index("{"):])["results"]


def test_qgis_process_runs_caption_changes_then_export_map(server: service_support.Server, scene: Path,
                                                           env: dict[str, str], tmp_path: Path, model_id: str) -> None:
    listed = qgis_process(env, "list")
    assert "hisem:caption_changes" in listed.stdout and "hisem:export_map" in listed.stdout, listed.stdout[-2000:]

    ds = gdal.Open(str(scene / "before.tif"))
    x, dx, _, y, _, dy = ds.GetGeoTransform()
    extent = f"{x + 16},{x + 80},{y - 80},{y - 16} [EPSG:32633]"
    gpkg = tmp_path / "out" / "changes.gpkg"  # the folder does not exist yet: the algorithm makes it
    results = run_json(env, "hisem:caption_changes", {
        "BEFORE": str(scene / "before.tif"), "AFTER": str(scene / "after.tif"), "EXTENT": extent,
        "BACKEND_URL": server.url, "MODEL": model_id, "OUTPUT": str(gpkg)})  # the 64 px test model
    assert Path(results["OUTPUT"]) == gpkg and gpkg.is_file()
    layers = ogr.Open(str(gpkg))
    assert results["TILES"] == layers.GetLayerByName("tiles").GetFeatureCount() > 0
    assert results["CHANGES"] == layers.GetLayerByName("changes").GetFeatureCount()

    if not (REPO / "hisem_qgis" / "export.py").is_file():
        pytest.skip("hisem_qgis/export.py is not there yet: export_map cannot run")
    pdf, png = tmp_path / "map.pdf", tmp_path / "map.png"
    results = run_json(env, "hisem:export_map", {
        "INPUT": str(gpkg), "BEFORE": str(scene / "before.tif"), "AFTER": str(scene / "after.tif"), "DPI": "72",
        "OUTPUT_PDF": str(pdf), "OUTPUT_PNG": str(png)})
    assert results["OUTPUT_PDF"] == str(pdf) and results["OUTPUT_PNG"] == str(png)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_qgis_process_reports_a_missing_aoi(env: dict[str, str], scene: Path, tmp_path: Path) -> None:
    done = qgis_process(env, "run", "hisem:caption_changes", "--", f"BEFORE={scene / 'before.tif'}",
                        f"AFTER={scene / 'after.tif'}", f"OUTPUT={tmp_path / 'x.gpkg'}")
    assert done.returncode != 0
    assert "no area of interest" in done.stdout + done.stderr
