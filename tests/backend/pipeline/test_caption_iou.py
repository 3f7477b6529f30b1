"""The shipped default model finds a synthetic scene's true changes (IoU >= 0.6 of the unions)."""

from __future__ import annotations

from pathlib import Path

import pytest
from osgeo import ogr

from hisem.cli import main
from hisem.engine.registry import DEFAULT_MODEL_ID, list_models

ogr.UseExceptions()


def _union(path: Path, layer_name: str) -> ogr.Geometry:
    union = ogr.Geometry(ogr.wkbMultiPolygon)
    ds = ogr.Open(str(path))  # kept referenced while its layer is read: GDAL would free it
    for feature in ds.GetLayerByName(layer_name):
        union = union.Union(feature.GetGeometryRef())
    return union


@pytest.mark.skipif(DEFAULT_MODEL_ID not in {m.id for m in list_models()},
                    reason=f"the default model {DEFAULT_MODEL_ID} is not installed")
def test_default_model_matches_truth(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    assert main(["synth", "--scene", str(scene), "--size-m", "512", "--gsd", "0.5", "--seed", "11"]) == 0
    out = tmp_path / "out.gpkg"
    assert main(["caption", str(scene / "before.tif"), str(scene / "after.tif"), "-o", str(out),
                 "--no-progress"]) == 0
    found, truth = _union(out, "changes"), _union(scene / "truth.gpkg", "changes")
    iou = found.Intersection(truth).GetArea() / found.Union(truth).GetArea()
    assert iou >= 0.6, f"IoU {iou:.3f}"
