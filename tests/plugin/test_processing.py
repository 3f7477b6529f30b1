"""The ``hisem`` Processing provider against the real backend: caption_changes, a batch of two AOIs, export_map."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import service_support
from osgeo import gdal, ogr
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QImage

import hisem_qgis
from hisem_qgis.layers import PROVENANCE_PROPERTY
from hisem_qgis.processing.caption_changes import RESULT_LAYER_PROPERTY
from hisem_qgis.processing.provider import HisemProvider

EPSG = "EPSG:32633"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[service_support.Server]:
    srv = service_support.start_server(tmp_path_factory.mktemp("serve"), tiny_model.parent)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def provider(qgis_processing: None) -> Iterator[HisemProvider]:
    registry = QgsApplication.processingRegistry()
    instance = HisemProvider()
    assert registry.addProvider(instance), "another 'hisem' provider is still registered"
    yield instance
    registry.removeProvider(instance)


def scene_box(scene: Path) -> QgsRectangle:
    ds = gdal.Open(str(scene / "before.tif"))
    x, dx, _, y, _, dy = ds.GetGeoTransform()
    return QgsRectangle(x, y + dy * ds.RasterYSize, x + dx * ds.RasterXSize, y)


def sub_box(scene: Path, width_m: float, height_m: float) -> QgsRectangle:
    """A box of the given size in the scene's north-west corner (inside the rasters)."""
    box = scene_box(scene)
    return QgsRectangle(box.xMinimum() + 16, box.yMaximum() - 16 - height_m,
                        box.xMinimum() + 16 + width_m, box.yMaximum() - 16)


def extent_text(box: QgsRectangle) -> str:
    return f"{box.xMinimum()},{box.xMaximum()},{box.yMinimum()},{box.yMaximum()} [{EPSG}]"


def caption_params(scene: Path, server: service_support.Server, output: Path, **extra: Any) -> dict[str, Any]:
    return {"BEFORE": str(scene / "before.tif"), "AFTER": str(scene / "after.tif"), "BACKEND_URL": server.url,
            "BEFORE_DATE": "2019-05-01", "AFTER_DATE": "2023-06-01", "OUTPUT": str(output), **extra}


def counts(gpkg: Path) -> tuple[int, int]:
    ds = ogr.Open(str(gpkg))
    return ds.GetLayerByName("changes").GetFeatureCount(), ds.GetLayerByName("tiles").GetFeatureCount()


def run_table(gpkg: Path) -> dict[str, Any]:
    ds = ogr.Open(str(gpkg))
    return {f.GetField("key"): json.loads(f.GetField("value")) for f in ds.GetLayerByName("run")}


@pytest.fixture(scope="module")
def batch(provider: HisemProvider, server: service_support.Server, scene: Path,
          tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], Path]]:
    """A batch of two AOIs of different sizes, run as the batch dialog runs them: one processing.run each."""
    import processing

    out = tmp_path_factory.mktemp("batch")
    runs = []
    for i, (w, h) in enumerate(((48, 48), (112, 48))):
        gpkg = out / f"aoi{i}.gpkg"
        results = processing.run("hisem:caption_changes",
                                 caption_params(scene, server, gpkg, EXTENT=extent_text(sub_box(scene, w, h))))
        runs.append((results, gpkg))
    return runs


def test_provider_is_registered_by_the_plugin(qgis_iface: Any, qgis_processing: None) -> None:
    registry = QgsApplication.processingRegistry()
    plugin = hisem_qgis.classFactory(qgis_iface)
    plugin.initProcessing()
    try:
        provider = registry.providerById("hisem")
        assert provider is not None and provider.name() == "HiSem" and not provider.icon().isNull()
        assert {a.id() for a in provider.algorithms()} == {"hisem:caption_changes", "hisem:export_map"}
    finally:
        plugin.unload()
    assert registry.providerById("hisem") is None


def test_batch_of_two_aois_writes_two_geopackages(batch: list[tuple[dict[str, Any], Path]]) -> None:
    (first, gpkg1), (second, gpkg2) = batch
    for results, gpkg in batch:
        assert Path(results["OUTPUT"]) == gpkg and gpkg.is_file()
        changes, tiles = counts(gpkg)
        assert results["TILES"] == tiles > 0
        assert results["CHANGES"] == changes
    assert first["TILES"] < second["TILES"], "the larger AOI must have more tiles"


def test_gsd_zero_takes_the_models_and_dates_are_kept(batch: list[tuple[dict[str, Any], Path]],
                                                     server: service_support.Server, model_id: str) -> None:
    models = server.client().get("/v1/models").json()
    gsd = next(m["gsd_m"] for m in models if m["id"] == model_id)
    provenance = run_table(batch[0][1])
    assert provenance["parameters"]["gsd_m"] == pytest.approx(gsd)
    assert provenance["dates"] == {"before": "2019-05-01", "after": "2023-06-01"}
    assert provenance["layers"] == {"before": "before", "after": "after"}


def test_aoi_takes_only_the_selected_polygons(provider: HisemProvider, server: service_support.Server,
                                              scene: Path, tmp_path: Path,
                                              batch: list[tuple[dict[str, Any], Path]]) -> None:
    import processing

    layer = QgsVectorLayer(f"Polygon?crs={EPSG}", "aoi", "memory")
    far = scene_box(scene)
    far = QgsRectangle(far.xMaximum() - 64, far.yMinimum() + 16, far.xMaximum() - 16, far.yMinimum() + 64)
    for box in (sub_box(scene, 48, 48), far):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromRect(box))
        assert layer.dataProvider().addFeature(feature)
    layer.selectByIds([next(layer.getFeatures()).id()])
    QgsProject.instance().addMapLayer(layer)
    try:
        results = processing.run("hisem:caption_changes", caption_params(
            scene, server, tmp_path / "selected.gpkg", AOI=QgsProcessingFeatureSourceDefinition(layer.id(), True)))
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    # The selected square is the first AOI of the batch: the same grid, the same tiles.
    assert results["TILES"] == batch[0][0]["TILES"]


def test_layers_load_styled_on_completion(provider: HisemProvider, server: service_support.Server, scene: Path,
                                          tmp_path: Path) -> None:
    import processing

    project = QgsProject.instance()
    before = set(project.mapLayers())
    processing.runAndLoadResults("hisem:caption_changes", caption_params(
        scene, server, tmp_path / "loaded.gpkg", EXTENT=extent_text(sub_box(scene, 48, 48))))
    added = [project.mapLayer(i) for i in set(project.mapLayers()) - before]
    try:
        by_name = {layer.customProperty(RESULT_LAYER_PROPERTY): layer for layer in added}
        assert set(by_name) == {"changes", "tiles"}
        changes = by_name["changes"]
        assert changes.renderer().type() == "graduatedSymbol", "the changes.qml style must be applied"
        assert changes.source().startswith(str(tmp_path / "loaded.gpkg"))
        assert json.loads(changes.customProperty(PROVENANCE_PROPERTY))["dates"]["after"] == "2023-06-01"
    finally:
        project.removeMapLayers([layer.id() for layer in added])


def test_missing_aoi_is_a_clear_error(provider: HisemProvider, server: service_support.Server, scene: Path,
                                      tmp_path: Path) -> None:
    import processing

    with pytest.raises(QgsProcessingException, match="no area of interest: set EXTENT"):
        processing.run("hisem:caption_changes", caption_params(scene, server, tmp_path / "none.gpkg"))
    assert not (tmp_path / "none.gpkg").exists()


def test_extent_and_aoi_together_are_refused(provider: HisemProvider, server: service_support.Server, scene: Path,
                                             tmp_path: Path) -> None:
    import processing

    layer = QgsVectorLayer(f"Polygon?crs={EPSG}", "aoi", "memory")
    feature = QgsFeature(layer.fields())
    feature.setGeometry(QgsGeometry.fromRect(sub_box(scene, 48, 48)))
    layer.dataProvider().addFeature(feature)
    with pytest.raises(QgsProcessingException, match="either as EXTENT or as AOI"):
        processing.run("hisem:caption_changes", caption_params(
            scene, server, tmp_path / "both.gpkg", EXTENT=extent_text(sub_box(scene, 48, 48)), AOI=layer))


def test_backend_down_is_a_clear_error(provider: HisemProvider, scene: Path, tmp_path: Path) -> None:
    import processing

    down = f"http://127.0.0.1:{service_support.free_port()}"
    params = {"BEFORE": str(scene / "before.tif"), "AFTER": str(scene / "after.tif"), "BACKEND_URL": down,
              "EXTENT": extent_text(sub_box(scene, 48, 48)), "OUTPUT": str(tmp_path / "down.gpkg")}
    with pytest.raises(QgsProcessingException, match=f"no backend at {down}"):
        processing.run("hisem:caption_changes", params)
    assert not (tmp_path / "down.gpkg").exists()


def test_unknown_model_names_the_available_ones(provider: HisemProvider, server: service_support.Server,
                                                scene: Path, tmp_path: Path, model_id: str) -> None:
    import processing

    with pytest.raises(QgsProcessingException, match=f"has no model 'no-such-model'; it has: .*{model_id}"):
        processing.run("hisem:caption_changes", caption_params(
            scene, server, tmp_path / "m.gpkg", EXTENT=extent_text(sub_box(scene, 48, 48)), MODEL="no-such-model"))


def test_export_map_writes_pdf_and_png(provider: HisemProvider, scene: Path, tmp_path: Path,
                                       batch: list[tuple[dict[str, Any], Path]]) -> None:
    import processing

    pdf, png = tmp_path / "map.pdf", tmp_path / "map.png"
    results = processing.run("hisem:export_map", {
        "INPUT": str(batch[1][1]), "BEFORE": str(scene / "before.tif"), "AFTER": str(scene / "after.tif"),
        "TITLE": "Two dates", "DPI": 72, "OUTPUT_PDF": str(pdf), "OUTPUT_PNG": str(png)})
    assert results == {"OUTPUT_PDF": str(pdf), "OUTPUT_PNG": str(png)}
    assert pdf.read_bytes()[:5] == b"%PDF-"
    image = QImage(str(png))
    assert not image.isNull() and image.width() > 100 and image.height() > 100


def test_export_map_needs_an_existing_result(provider: HisemProvider, tmp_path: Path) -> None:
    import processing

    with pytest.raises(QgsProcessingException):
        processing.run("hisem:export_map", {"INPUT": str(tmp_path / "missing.gpkg"),
                                            "OUTPUT_PNG": str(tmp_path / "x.png")})
    assert not (tmp_path / "x.png").exists()
