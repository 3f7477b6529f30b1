"""The result leaves QGIS readable: a GeoPackage that opens styled, and an annotated A4 map as PDF and PNG."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from geo_helpers import write_tif
from osgeo import ogr, osr
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsGraduatedSymbolRenderer,
    QgsLayoutExporter,
    QgsPrintLayout,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor, QImage

from hisem_qgis.export import ExportError, export_map, read_provenance, save_styles_in_gpkg
from hisem_qgis.layers import write_result_gpkg
from hisem_qgis.review import REJECTED, set_review

X0, Y1, SIZE, GSD = 500000.0, 5000000.0, 256.0, 0.5  # a 256 m scene at 0.5 m in EPSG:32633
CAPTIONS = ["two buildings are built along the road", "a parking lot replaces the meadow",
            "a new road crosses the field", "some trees are cut down", "a house is built in the corner"]
# (x, y) offsets of each change's south-west corner from the scene's north-west corner, metres; size 20 m.
PLACES = [(40, -60), (150, -50), (100, -140), (30, -200), (200, -210)]


def _polygon(x: float, y: float, w: float, h: float) -> list[list[list[float]]]:
    return [[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]]


def scene_geojson() -> dict:
    """A result as GET /v1/jobs/{id}/result gives it: a 4×4 grid of 64 m tiles and five changes."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    features = []
    for i in range(16):
        x, y = X0 + 64 * (i % 4), Y1 - 64 * (i // 4 + 1)
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": _polygon(x, y, 64, 64)},
                         "properties": {"kind": "tile", "tile_index": i, "changed": i in (4, 6, 9, 12, 15),
                                        "change_score": 0.8, "caption": "the scene is the same as before",
                                        "caption_score": -0.3, "alternatives": []}})
    for n, ((dx, dy), caption) in enumerate(zip(PLACES, CAPTIONS, strict=True), start=1):
        features.append({"type": "Feature",
                         "geometry": {"type": "MultiPolygon", "coordinates": [_polygon(X0 + dx, Y1 + dy, 20, 20)]},
                         "properties": {"kind": "change", "change_id": n, "area_m2": 400.0, "caption": caption,
                                        "score": [0.95, 0.7, 0.55, 0.3, 0.85][n - 1], "tile_index": 0}})
    return {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
            "crs_wkt": srs.ExportToWkt(), "features": features,
            "provenance": {"model": "hisem-lite-synthetic-v1", "versions": {"hisem": "0.3.0"},
                           "parameters": {"gsd_m": GSD, "tile_size": 128}, "dates": {"before": "2019-05-01",
                                                                                  "after": "2023-06-12"},
                           "created": "2024-03-02T10:00:00Z", "job_id": "job-42"}}


def make_geotiff(path: Path, after: bool) -> Path:
    """Fields and a road; the after image has a red roof where each change is."""
    n = int(SIZE / GSD)
    rgb = np.zeros((3, n, n), dtype=np.uint8)
    rgb[0], rgb[1], rgb[2] = 90, 140, 70  # meadow
    rgb[:, :, 230:250] = np.array([120, 120, 120])[:, None, None]  # a north-south road
    if after:
        for dx, dy in PLACES:
            col, row = int(dx / GSD), int(-dy / GSD) - int(20 / GSD)
            rgb[:, row:row + 40, col:col + 40] = np.array([200, 60, 50])[:, None, None]
    return write_tif(path, rgb, origin=(X0, Y1), gsd=GSD)


@pytest.fixture()
def result(tmp_path: Path) -> Path:
    return write_result_gpkg(scene_geojson(), tmp_path / "changes.gpkg")


@pytest.fixture()
def rasters(tmp_path: Path, qgis_app) -> tuple[QgsRasterLayer, QgsRasterLayer]:
    before = QgsRasterLayer(str(make_geotiff(tmp_path / "before.tif", False)), "ortho_2019", "gdal")
    after = QgsRasterLayer(str(make_geotiff(tmp_path / "after.tif", True)), "ortho_2023", "gdal")
    assert before.isValid() and after.isValid()
    return before, after


def pdf_page_size(path: Path) -> tuple[float, float]:
    out = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", out)
    assert match, out
    return float(match.group(1)), float(match.group(2))


def test_result_gpkg_opens_styled(result: Path, qgis_app) -> None:
    ds = ogr.Open(str(result))
    styles = ds.GetLayerByName("layer_styles")
    assert styles is not None, "no layer_styles table: the styles are not saved at write time"
    saved = {(f.GetField("f_table_name"), f.GetField("useAsDefault")) for f in styles}
    assert saved == {("changes", 1), ("tiles", 1)}
    ds = None
    # A fresh layer, no QML loaded by hand: QGIS applies the stored default style.
    changes = QgsVectorLayer(f"{result}|layername=changes", "changes", "ogr")
    assert isinstance(changes.renderer(), QgsGraduatedSymbolRenderer)
    assert changes.renderer().classAttribute() == "score" and changes.labelsEnabled()
    tiles = QgsVectorLayer(f"{result}|layername=tiles", "tiles", "ogr")
    assert tiles.renderer().type() == "RuleRenderer"


def test_save_styles_refuses_a_foreign_gpkg(tmp_path: Path, qgis_app) -> None:
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "other.gpkg"))
    ds.CreateLayer("roads", None, ogr.wkbLineString)
    ds = None
    with pytest.raises(OSError, match="cannot open layer 'changes'"):
        save_styles_in_gpkg(tmp_path / "other.gpkg")


def test_export_map_pdf_and_png(result: Path, rasters, tmp_path: Path, qgis_new_project) -> None:
    set_review(QgsVectorLayer(f"{result}|layername=changes", "changes", "ogr"), [4], REJECTED)
    before_layers = dict(QgsProject.instance().mapLayers())
    pdf, png = tmp_path / "map.pdf", tmp_path / "map.png"
    written = export_map(result, *rasters, pdf, png, dpi=100)
    assert written == [pdf, png]
    assert dict(QgsProject.instance().mapLayers()) == before_layers  # nothing added to the user's project
    assert QgsProject.instance().layoutManager().layouts() == []
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    width_pt, height_pt = pdf_page_size(pdf)
    assert width_pt == pytest.approx(842, abs=2) and height_pt == pytest.approx(595, abs=2)  # A4 landscape
    image = QImage(str(png))
    assert image.width() == pytest.approx(297 / 25.4 * 100, abs=1) and image.height() == pytest.approx(210 / 25.4 * 100,
                                                                                                    abs=1)
    # An empty layout of the same page, exported the same way, is blank: the map is not.
    empty = QgsPrintLayout(QgsProject.instance())
    empty.initializeDefaults()
    empty.pageCollection().page(0).setPageSize("A4", empty.pageCollection().page(0).Orientation.Landscape)
    settings = QgsLayoutExporter.ImageExportSettings()
    settings.dpi = 100
    assert QgsLayoutExporter(empty).exportToImage(str(tmp_path / "empty.png"), settings) == \
        QgsLayoutExporter.ExportResult.Success
    del empty  # before QGIS exits
    blank = QImage(str(tmp_path / "empty.png"))
    assert blank.size() == image.size() and blank != image
    # The after map shows the red roofs under the change polygons; the page is mostly not blank.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50


def test_export_map_of_the_view_and_without_rasters(result: Path, tmp_path: Path, qgis_app) -> None:
    view = QgsRectangle(X0 + 20, Y1 - 100, X0 + 120, Y1 - 20)  # around change 1, in the result's CRS
    written = export_map(result, None, None, None, tmp_path / "view.png", title="Zoom on change 1", extent=view,
                         extent_crs=QgsCoordinateReferenceSystem("EPSG:32633"), dpi=60)
    assert written == [tmp_path / "view.png"] and abs(QImage(str(written[0])).width() - 297 / 25.4 * 60) <= 1
    assert not (tmp_path / "view.pdf").exists()


def test_export_map_errors(result: Path, tmp_path: Path, qgis_app) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_map(tmp_path / "missing.gpkg", None, None, tmp_path / "m.pdf", None)
    with pytest.raises(ValueError, match="PDF or a PNG"):
        export_map(result, None, None, None, None)
    with pytest.raises(FileNotFoundError, match="folder"):
        export_map(result, None, None, tmp_path / "nowhere" / "m.pdf", None)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "other.gpkg"))
    ds.CreateLayer("roads", None, ogr.wkbLineString)
    ds = None
    with pytest.raises(ExportError, match="no layer 'changes'"):
        export_map(tmp_path / "other.gpkg", None, None, tmp_path / "m.pdf", None)
    assert not (tmp_path / "m.pdf").exists()


def test_read_provenance(result: Path) -> None:
    provenance = read_provenance(result)
    assert provenance["dates"] == {"before": "2019-05-01", "after": "2023-06-12"}
    assert provenance["parameters"]["gsd_m"] == GSD



def _solid(path: Path, rgb: tuple[int, int, int]) -> QgsRasterLayer:
    n = int(SIZE / GSD)
    write_tif(path, np.broadcast_to(np.array(rgb, np.uint8)[:, None, None], (3, n, n)).copy(), origin=(X0, Y1),
              gsd=GSD)
    layer = QgsRasterLayer(str(path), path.stem, "gdal")
    assert layer.isValid()
    return layer


def test_each_map_shows_its_own_date(result: Path, tmp_path: Path, qgis_app) -> None:
    """The before map draws the before image only, the after map the after image only."""
    before, after = _solid(tmp_path / "blue.tif", (0, 0, 255)), _solid(tmp_path / "green.tif", (0, 255, 0))
    png = tmp_path / "map.png"
    export_map(result, before, after, None, png, dpi=50)
    image = QImage(str(png))
    middle = int(image.width() * 105 / 297)  # the maps sit left and right of x = 105 mm on the A4 page

    def count(colour: QColor, x0: int, x1: int) -> int:
        return sum(image.pixelColor(x, y) == colour for x in range(x0, x1, 3) for y in range(0, image.height(), 3))

    blue, green = QColor(0, 0, 255), QColor(0, 255, 0)
    assert count(blue, 0, middle) > 100 and count(green, 0, middle) == 0
    assert count(green, middle, image.width()) > 100 and count(blue, middle, image.width()) == 0
