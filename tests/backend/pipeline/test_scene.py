"""`hisem synth --scene`: georeferenced GeoTIFFs and truth polygons that match the mask exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from osgeo import gdal, ogr

from hisem.data.synth.georef import write_scene

gdal.UseExceptions()
ogr.UseExceptions()


def test_scene_georeference_and_truth_area(tmp_path: Path) -> None:
    scene = write_scene(tmp_path, size_m=128, gsd=0.5, seed=5)
    ds = gdal.Open(str(scene.before))
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (256, 256, 3)
    assert ds.GetSpatialRef().GetAuthorityCode(None) == "32633"
    assert ds.GetGeoTransform()[1] == 0.5
    truth = ogr.Open(str(scene.truth))  # kept referenced: GDAL frees a layer with its data source
    layer = truth.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32633"
    area = sum(f.GetGeometryRef().GetArea() for f in layer)
    assert area == scene.changed_px * 0.25  # polygons trace pixel edges: exact


def test_after_warped_to_another_crs_and_gsd(tmp_path: Path) -> None:
    scene = write_scene(tmp_path, size_m=128, gsd=0.5, after_crs="EPSG:4326", after_gsd=1.0, seed=5)
    ds = gdal.Open(str(scene.after))
    assert ds.GetSpatialRef().GetAuthorityCode(None) == "4326"
    assert abs(ds.GetGeoTransform()[5]) * 111_320 == pytest.approx(1.0)
    assert not list(tmp_path.glob(".*"))  # the unwarped intermediate is gone
