"""The result GeoJSON becomes a GeoPackage and a group of styled layers; a failure leaves no file and no change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from osgeo import ogr, osr
from qgis.core import (
    QgsGraduatedSymbolRenderer,
    QgsLayerTreeGroup,
    QgsProject,
    QgsRuleBasedLabeling,
    QgsRuleBasedRenderer,
    QgsVectorLayer,
    QgsWkbTypes,
)

from hisem_qgis.layers import PROVENANCE_PROPERTY, ResultError, add_result_layers, write_result_gpkg

X0, Y1 = 500000.0, 5000000.0
MODEL = "hisem-lite-synthetic-v1"


def _square(x: float, y: float, size: float) -> list[list[list[float]]]:
    return [[[x, y], [x + size, y], [x + size, y - size], [x, y - size], [x, y]]]


def _tile(index: int, x: float, changed: bool, caption: str) -> dict:
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": _square(x, Y1, 32.0)},
            "properties": {"kind": "tile", "tile_index": index, "changed": changed,
                           "change_score": 0.9 if changed else 0.1, "caption": caption, "caption_score": -0.4,
                           "alternatives": [{"caption": "a road is built", "score": -1.2}]}}


def _change(change_id: int, x: float, score: float) -> dict:
    return {"type": "Feature",
            "geometry": {"type": "MultiPolygon", "coordinates": [_square(x, Y1 - 4, 6.0)]},
            "properties": {"kind": "change", "change_id": change_id, "area_m2": 36.0,
                           "caption": "two buildings are built along the road", "score": score, "tile_index": 0}}


def result_geojson() -> dict:
    """The shape of GET /v1/jobs/{id}/result: three tiles, two changes, EPSG:32633."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
        "crs_wkt": srs.ExportToWkt(),
        "features": [
            _tile(0, X0, True, "two buildings are built along the road"),
            _tile(1, X0 + 24, False, "the scene is the same as before"),
            _tile(2, X0 + 48, False, "the scene is the same as before"),
            _change(1, X0 + 4, 0.93),
            _change(2, X0 + 14, 0.55),
        ],
        "provenance": {
            "model": MODEL, "versions": {"hisem": "0.3.0", "gdal": "3.6.2"},
            "parameters": {"gsd_m": 0.5, "tile_size": 64, "overlap": 16, "beam": 3, "threshold": 0.5},
            "execution_provider": ["CPUExecutionProvider"], "dates": {"before": "2019-05-01", "after": "2023-06-12"},
            "created": "2024-01-01T00:00:00Z", "job_id": "job-123",
        },
    }


def test_write_result_gpkg(tmp_path: Path) -> None:
    path = write_result_gpkg(result_geojson(), tmp_path / "result.gpkg")
    assert path == tmp_path / "result.gpkg" and sorted(p.name for p in tmp_path.iterdir()) == ["result.gpkg"]
    ds = ogr.Open(str(path))
    changes, tiles, run = (ds.GetLayerByName(n) for n in ("changes", "tiles", "run"))
    assert changes.GetGeomType() == ogr.wkbMultiPolygon and tiles.GetGeomType() == ogr.wkbPolygon
    assert run.GetGeomType() == ogr.wkbNone
    expected_srs = osr.SpatialReference()
    expected_srs.ImportFromEPSG(32633)
    assert changes.GetSpatialRef().IsSame(expected_srs) and tiles.GetSpatialRef().IsSame(expected_srs)
    change_defn = changes.GetLayerDefn()
    assert [change_defn.GetFieldDefn(i).GetName() for i in range(change_defn.GetFieldCount())] == [
        "change_id", "area_m2", "caption", "score", "tile_index", "review_status", "caption_reviewed", "reviewed_at"]
    tile_defn = tiles.GetLayerDefn()
    assert [tile_defn.GetFieldDefn(i).GetName() for i in range(tile_defn.GetFieldCount())] == [
        "tile_index", "changed", "change_score", "caption", "caption_score", "alternatives"]
    assert changes.GetFeatureCount() == 2 and tiles.GetFeatureCount() == 3
    first = next(iter(tiles))
    assert first.GetField("changed") == 1 and json.loads(first.GetField("alternatives"))[0]["score"] == -1.2
    change = changes.GetFeature(1)
    assert change.GetField("score") == pytest.approx(0.93) and change.GetGeometryRef().GetArea() == pytest.approx(36)
    provenance = {f.GetField("key"): json.loads(f.GetField("value")) for f in run}
    assert provenance["model"] == MODEL and provenance["parameters"]["gsd_m"] == 0.5
    ds = None


def test_existing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "result.gpkg"
    path.write_bytes(b"an earlier result")
    with pytest.raises(FileExistsError, match="already exists"):
        write_result_gpkg(result_geojson(), path)
    assert path.read_bytes() == b"an earlier result"
    write_result_gpkg(result_geojson(), path, overwrite=True)
    assert ogr.Open(str(path)).GetLayerByName("tiles").GetFeatureCount() == 3


@pytest.mark.parametrize("broken", ["geometry", "kind", "crs"])
def test_a_failed_write_leaves_nothing(tmp_path: Path, broken: str) -> None:
    result = result_geojson()
    if broken == "geometry":
        result["features"][4]["geometry"] = {"type": "Polygon", "coordinates": "not coordinates"}
    elif broken == "kind":
        result["features"][1]["properties"]["kind"] = "mystery"
    else:
        del result["crs_wkt"], result["crs"]
    previous = tmp_path / "result.gpkg"
    previous.write_bytes(b"an earlier result")
    with pytest.raises(ResultError):
        write_result_gpkg(result, previous, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.gpkg"]
    assert previous.read_bytes() == b"an earlier result"


def test_unwritable_folder_leaves_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
    else:  # root writes into read-only folders; nobody creates files in /proc
        folder = Path("/proc")
    target = folder / f"hisem-test-{os.getpid()}.gpkg"
    try:
        with pytest.raises(OSError, match="cannot"):
            write_result_gpkg(result_geojson(), target)
        assert not target.exists() and not list(folder.glob(f".hisem-test-{os.getpid()}*"))
    finally:
        if folder != Path("/proc"):
            folder.chmod(0o700)


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_result_gpkg(result_geojson(), tmp_path / "nowhere" / "result.gpkg")


def _tree_state(project: QgsProject) -> tuple[list[str], list[str]]:
    return sorted(project.mapLayers()), [c.name() for c in project.layerTreeRoot().children()]


def test_add_result_layers(tmp_path: Path, qgis_new_project) -> None:
    project = QgsProject.instance()
    other = QgsVectorLayer("Point?crs=EPSG:4326", "analyst's layer", "memory")
    project.addMapLayer(other)
    provenance = result_geojson()["provenance"]
    gpkg = write_result_gpkg(result_geojson(), tmp_path / "result.gpkg")
    group = add_result_layers(gpkg, project, "HiSem 2019-05-01 → 2023-06-12", provenance)
    assert isinstance(group, QgsLayerTreeGroup)
    root = project.layerTreeRoot()
    assert root.children()[0] is group and len(root.findGroups()) == 1  # one new group, at the top
    layers = [node.layer() for node in group.findLayers()]
    assert [layer.name() for layer in layers] == ["changes", "tiles"]
    changes, tiles = layers
    assert all(layer.isValid() for layer in layers)
    assert changes.crs().authid() == "EPSG:32633" and changes.featureCount() == 2 and tiles.featureCount() == 3
    assert changes.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry
    # Styles from resources/styles: graduated by score; rule-based tiles, labelled with captions.
    assert isinstance(changes.renderer(), QgsGraduatedSymbolRenderer)
    assert changes.renderer().classAttribute() == "score" and len(changes.renderer().ranges()) >= 3
    assert isinstance(tiles.renderer(), QgsRuleBasedRenderer)
    rules = tiles.renderer().rootRule().children()
    assert [r.filterExpression() for r in rules if not r.isElse()] == ['"changed"']
    assert tiles.labelsEnabled() and isinstance(tiles.labeling(), QgsRuleBasedLabeling)
    label_rule = tiles.labeling().rootRule().children()[0]
    assert "caption" in label_rule.settings().fieldName and label_rule.filterExpression() == '"changed"'
    # The style's rules pick the right tiles: one changed, two unchanged.
    renderer = tiles.renderer().clone()
    from qgis.core import QgsRenderContext

    ctx = QgsRenderContext()
    renderer.startRender(ctx, tiles.fields())
    legend = {r.label(): 0 for r in rules}
    for feature in tiles.getFeatures():
        for rule in renderer.rootRule().children():
            if renderer.willRenderFeature(feature, ctx) and rule.isFilterOK(feature, ctx):
                legend[rule.label()] += 1
                break
    renderer.stopRender(ctx)
    assert legend == {"Changed": 1, "Unchanged": 2}
    # Provenance in the metadata of both layers.
    for layer in layers:
        metadata = layer.metadata()
        assert MODEL in metadata.abstract() and "2019-05-01" in metadata.abstract()
        assert "CPUExecutionProvider" in metadata.abstract() and "0.3.0" in metadata.abstract()
        assert any(MODEL in k for k in metadata.keywords()["HiSem"])
        assert json.loads(layer.customProperty(PROVENANCE_PROPERTY))["parameters"]["gsd_m"] == 0.5
    assert project.mapLayer(other.id()) is other


def test_add_result_layers_failure_leaves_project_unchanged(tmp_path: Path, qgis_new_project) -> None:
    project = QgsProject.instance()
    project.addMapLayer(QgsVectorLayer("Point?crs=EPSG:4326", "analyst's layer", "memory"))
    before = _tree_state(project)
    # A GeoPackage without the result's layers (not a HiSem result).
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "other.gpkg"))
    ds.CreateLayer("roads", None, ogr.wkbLineString)
    ds = None
    with pytest.raises(ValueError, match="cannot open layer 'changes'"):
        add_result_layers(tmp_path / "other.gpkg", project, "HiSem", {})
    with pytest.raises(FileNotFoundError):
        add_result_layers(tmp_path / "missing.gpkg", project, "HiSem", {})
    assert _tree_state(project) == before
