"""polygonize and the GeoPackage/GeoJSON writers: exact polygons, areas, CRS, atomic output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from geo_helpers import write_tif
from osgeo import ogr

from hisem.geo import (
    ChangeFeature,
    ChangeRegion,
    GeoError,
    Grid,
    OutputExistsError,
    TileFeature,
    assign_tile,
    polygonize,
    sha256_file,
    tile_grid,
    write_geojson,
    write_gpkg,
)
from hisem.geo.crs import make_srs

SQUARE = "POLYGON ((500020 4999990,500040 4999990,500040 4999970,500020 4999970,500020 4999990))"
# What gdal.Polygonize traces for that square: the same ring, walked counter-clockwise.
TRACED = "POLYGON ((500020 4999990,500020 4999970,500040 4999970,500040 4999990,500020 4999990))"


def _probabilities(tmp_path: Path, dtype: str = "float32") -> Path:
    """40 x 30 px at 2 m in EPSG:32633: a 10 x 10 px square at 0.9, a 2 x 2 px speck at 0.8."""
    prob = np.full((30, 40), 0.1, np.float32)
    prob[5:15, 10:20] = 0.9  # x 500020..500040, y 4999990..4999970: 400 m2
    prob[20:22, 30:32] = 0.8  # 16 m2
    prob[0, 0] = np.nan  # uncovered pixel, never a change
    if dtype == "uint8":
        prob = np.rint(np.nan_to_num(prob) * 255).astype(np.uint8)
    return write_tif(tmp_path / "prob.tif", prob[None], gsd=2.0)


def test_known_square_comes_back_exactly(tmp_path: Path) -> None:
    regions = polygonize(_probabilities(tmp_path), threshold=0.5, min_area_m2=20.0)
    assert len(regions) == 1
    (square,) = regions
    assert square.wkt == TRACED
    assert square.area_m2 == 400.0
    assert square.score == pytest.approx(0.9, abs=1e-6)
    both = polygonize(_probabilities(tmp_path), threshold=0.5)
    assert sorted(r.area_m2 for r in both) == [16.0, 400.0]
    assert sorted(round(r.score, 5) for r in both) == [0.8, 0.9]
    assert polygonize(_probabilities(tmp_path), threshold=0.95) == []


def test_uint8_probabilities_and_mean_score(tmp_path: Path) -> None:
    (square,) = polygonize(_probabilities(tmp_path, "uint8"), threshold=0.85, block=16)  # 0.8 speck excluded
    assert square.wkt == TRACED
    assert square.score == pytest.approx(np.rint(np.full(1, 0.9, np.float32) * 255)[0] / 255)  # as written


def test_simplify_drops_staircase_vertices(tmp_path: Path) -> None:
    y, x = np.mgrid[0:40, 0:40]
    prob = ((x - 20) ** 2 + (y - 20) ** 2 < 15**2).astype(np.float32)[None]  # a pixelated disc
    path = write_tif(tmp_path / "disc.tif", prob, gsd=1.0)
    (raw,) = polygonize(path, 0.5)
    (smooth,) = polygonize(path, 0.5, simplify_m=1.5)
    assert raw.area_m2 == float(prob.sum())
    def vertices(region: ChangeRegion) -> int:
        polygon = region.geometry()  # kept alive: its ring is only a view into it
        return polygon.GetGeometryRef(0).GetPointCount()

    assert vertices(smooth) < vertices(raw) / 2
    assert smooth.area_m2 == pytest.approx(np.pi * 15**2, rel=0.05)
    assert smooth.geometry().IsValid()


def test_assign_tile_prefers_the_most_central_view(tmp_path: Path) -> None:
    grid = Grid("", 500_000.0, 5_000_000.0, 2.0, 40, 30)
    tiles = tile_grid(grid, 16, 4)
    (square,) = polygonize(_probabilities(tmp_path), threshold=0.5, min_area_m2=20.0)
    index = assign_tile(square, tiles)
    # The square's centroid is pixel (15, 10): tiles start at 0/12/24 px; (12, 0) has centre (20, 8).
    assert (tiles[index].x_off, tiles[index].y_off) == (12, 0)


def _features() -> tuple[list[TileFeature], list[ChangeFeature]]:
    tiles = [TileFeature(0, SQUARE.replace("500040", "500060"), True, 0.93, "a house is built",
                         (("a building appears", -1.5),), caption_score=-0.5),
             TileFeature(1, SQUARE, False, 0.05, "the scene is the same as before")]
    changes = [ChangeFeature(SQUARE, 400.0, "a house is built", 0.9, 0)]
    return tiles, changes


def test_write_gpkg_layers_fields_crs(tmp_path: Path) -> None:
    tiles, changes = _features()
    out = tmp_path / "changes.gpkg"
    run_info = {"model": "hisem-lite-synthetic", "parameters": {"threshold": 0.5}, "execution_provider":
                "CPUExecutionProvider", "inputs": {"before.tif": sha256_file(_probabilities(tmp_path))}}
    crs = make_srs("EPSG:32633").ExportToWkt()
    assert write_gpkg(out, crs, tiles, changes, run_info) == out
    ds = ogr.Open(str(out))
    assert sorted(ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())) == ["changes", "run", "tiles"]
    layer = ds.GetLayerByName("changes")
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32633"
    (feature,) = list(layer)
    assert feature.GetGeometryRef().GetArea() == 400.0
    assert (feature["caption"], feature["score"], feature["tile_index"], feature["area_m2"]) == (
        "a house is built", 0.9, 0, 400.0)
    first, second = list(ds.GetLayerByName("tiles"))
    assert first["changed"] == 1 and second["changed"] == 0
    assert json.loads(first["alternatives"]) == [{"caption": "a building appears", "score": -1.5}]
    assert first["caption_score"] == -0.5
    assert first.GetGeometryRef().GetArea() == 800.0
    run = {f["key"]: f["value"] for f in ds.GetLayerByName("run")}
    assert run["model"] == "hisem-lite-synthetic"
    assert json.loads(run["parameters"]) == {"threshold": 0.5}
    assert len(json.loads(run["inputs"])["before.tif"]) == 64
    assert ds.GetLayerByName("run").GetGeomType() == ogr.wkbNone
    ds = None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changes.gpkg", "prob.tif"]  # no temporary file


def test_write_gpkg_refuses_to_overwrite_and_fails_cleanly(tmp_path: Path) -> None:
    tiles, changes = _features()
    crs = make_srs("EPSG:32633").ExportToWkt()
    out = write_gpkg(tmp_path / "r.gpkg", crs, tiles, changes, {})
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match="r.gpkg exists"):
        write_gpkg(out, crs, tiles, changes, {})
    broken = [ChangeFeature("POLYGON ((not wkt))", 1.0, "x", 0.5, None)]
    with pytest.raises(GeoError, match="layer changes: invalid geometry"):
        write_gpkg(out, crs, tiles, broken, {}, overwrite=True)
    assert out.read_bytes() == before  # the previous result survives a failed run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.gpkg"]
    write_gpkg(out, crs, tiles[:1], [], {"model": "m"}, overwrite=True)
    assert ogr.Open(str(out)).GetLayerByName("tiles").GetFeatureCount() == 1


def test_write_geojson_is_wgs84(tmp_path: Path) -> None:
    _, changes = _features()
    out = write_geojson(tmp_path / "c.geojson", make_srs("EPSG:32633").ExportToWkt(), changes)
    (feature,) = json.loads(out.read_text())["features"]
    assert feature["properties"]["caption"] == "a house is built"
    lon, lat = np.array(feature["geometry"]["coordinates"]).reshape(-1, 2)[0]
    assert 15.0 < lon < 15.001 and 45.15 < lat < 45.16  # longitude first, just east of UTM 33's meridian
    with pytest.raises(OutputExistsError):
        write_geojson(out, make_srs("EPSG:32633").ExportToWkt(), changes)
