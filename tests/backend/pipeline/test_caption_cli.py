"""`hisem caption` end to end: real GDAL, a real (tiny) exported model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from osgeo import gdal, ogr

from hisem.cli import main
from hisem.pipeline import CaptionOptions, PipelineCancelled, caption_changes

gdal.UseExceptions()
ogr.UseExceptions()


def _run_table(path: Path) -> dict[str, str]:
    ds = ogr.Open(str(path))
    return {f.GetField("key"): f.GetField("value") for f in ds.GetLayerByName("run")}


def _caption(scene: Path, out: Path, model: Path, *extra: str, after: str = "after.tif") -> int:
    return main(["caption", str(scene / "before.tif"), str(scene / after), "-o", str(out), "--model", str(model),
                 "--no-progress", *extra])


def test_end_to_end_layers_crs_and_tile_count(scene: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    # 512 px at 0.5 m, 64 px tiles with 8 px overlap: stride 56 -> ceil((512-64)/56)+1 = 9 per axis.
    assert _caption(scene, out, tiny_model, "--geojson", str(tmp_path / "c.geojson")) == 0
    ds = ogr.Open(str(out))
    assert {ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())} == {"tiles", "changes", "run"}
    tiles = ds.GetLayerByName("tiles")
    assert tiles.GetFeatureCount() == 81
    assert tiles.GetSpatialRef().GetAuthorityCode(None) == "32633"
    assert ds.GetLayerByName("changes").GetSpatialRef().GetAuthorityCode(None) == "32633"
    run = _run_table(out)
    assert json.loads(run["tiles"]) == {"total": 81, "skipped_nodata": 0, "captioned": 81}
    assert run["model"] == "tiny-model"
    assert len(json.loads(run["inputs"])[0]["sha256"]) == 64
    assert (tmp_path / "out.prob.tif").is_file()
    geojson = json.loads((tmp_path / "c.geojson").read_text())
    assert geojson["type"] == "FeatureCollection"
    assert len(geojson["features"]) == ds.GetLayerByName("changes").GetFeatureCount()


def test_two_crs_two_gsds_and_aoi_in_a_third(tmp_path: Path, tiny_model: Path) -> None:
    scene = tmp_path / "s"
    assert main(["synth", "--scene", str(scene), "--size-m", "256", "--after-crs", "EPSG:3857",
                 "--after-gsd", "1.6", "--seed", "4"]) == 0
    # An EPSG:4326 bbox around the scene centre (15 E, 50 N), ~100 m a side.
    dlon, dlat = 50 / (111_320 * math.cos(math.radians(50))), 50 / 111_320
    bbox = f"{15 - dlon},{50 - dlat},{15 + dlon},{50 + dlat}"
    out = tmp_path / "out.gpkg"
    assert _caption(scene, out, tiny_model, "--bbox", bbox, "--bbox-crs", "EPSG:4326") == 0
    run = _run_table(out)
    tiles = json.loads(run["tiles"])
    # ~200 px square at 0.5 m: ceil((200-64)/56)+1 = 4 tiles of 64 px (overlap 8) per axis; the
    # bbox is a little larger in UTM, where its edges are not parallel to the grid.
    assert 16 <= tiles["total"] <= 25
    # EPSG:3857 metres at 50 N: 1.6 m a pixel as the raster reports it, 3.2x the before's 0.5 m.
    assert any("GSDs differ" in w for w in json.loads(run["warnings"]))
    ds = ogr.Open(str(out))  # kept referenced while its layer is used
    assert ds.GetLayerByName("tiles").GetSpatialRef().GetAuthorityCode(None) == "32633"


def test_nodata_tiles_are_skipped_and_counted(scene: Path, tiny_model: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.tif"
    src = gdal.Open(str(scene / "before.tif"))
    ds = gdal.GetDriverByName("GTiff").CreateCopy(str(before), src)
    for b in range(1, 4):  # the left half is nodata: 0 with nodata=0
        band = ds.GetRasterBand(b)
        band.SetNoDataValue(0)
        band.WriteArray(band.ReadAsArray()[:, :256] * 0, 0, 0)
    ds = None
    out = tmp_path / "out.gpkg"
    assert main(["caption", str(before), str(scene / "after.tif"), "-o", str(out), "--model", str(tiny_model),
                 "--no-progress"]) == 0
    tiles = json.loads(_run_table(out)["tiles"])
    assert tiles["total"] == 81 and 27 <= tiles["skipped_nodata"] <= 45


def _expect_error(capsys: pytest.CaptureFixture[str], argv: list[str], out: Path, words: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not out.exists()
    assert not any(p.name.startswith(".") for p in out.parent.iterdir()), list(out.parent.iterdir())


def test_error_cases(scene: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    out = out_dir / "out.gpkg"
    base = ["--model", str(tiny_model), "--no-progress", "-o", str(out)]
    before, after = str(scene / "before.tif"), str(scene / "after.tif")
    # No overlap: the after image shifted 10 km east.
    far = tmp_path / "far.tif"
    ds = gdal.Translate(str(far), after)
    x0, *rest = ds.GetGeoTransform()
    ds.SetGeoTransform((x0 + 10_000, *rest))
    ds = None
    _expect_error(capsys, ["caption", before, str(far), *base], out, "do not overlap")
    # No CRS.
    nocrs = tmp_path / "nocrs.tif"
    gdal.Translate(str(nocrs), after, options=gdal.TranslateOptions(outputSRS=None, format="GTiff"))
    ds = gdal.Open(str(nocrs), gdal.GA_Update)
    ds.SetProjection("")
    ds = None
    _expect_error(capsys, ["caption", before, str(nocrs), *base], out, "CRS")
    # Truncated file.
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(Path(after).read_bytes()[:4000])
    _expect_error(capsys, ["caption", before, str(truncated), *base], out, "truncated.tif")
    # Wrong band count: one band.
    gray = tmp_path / "gray.tif"
    gdal.Translate(str(gray), after, options=gdal.TranslateOptions(bandList=[1]))
    _expect_error(capsys, ["caption", before, str(gray), *base], out, "band")
    # All-nodata AOI: a polygon over a nodata corner.
    nodata = tmp_path / "nodata.tif"
    ds = gdal.Translate(str(nodata), after)
    for b in range(1, 4):
        ds.GetRasterBand(b).SetNoDataValue(0)
        ds.GetRasterBand(b).WriteArray(ds.GetRasterBand(b).ReadAsArray()[:100, :100] * 0, 0, 0)
    gt = ds.GetGeoTransform()
    ds = None
    x0, y0 = gt[0] + 5, gt[3] - 5
    wkt = f"SRID=32633;POLYGON(({x0} {y0},{x0 + 30} {y0},{x0 + 30} {y0 - 30},{x0} {y0 - 30},{x0} {y0}))"
    _expect_error(capsys, ["caption", before, str(nodata), "--aoi", wkt, *base], out, "nodata")
    # Too many tiles.
    _expect_error(capsys, ["caption", before, after, "--max-tiles", "10", *base], out, "more than the limit")
    # Existing output without --overwrite: left as it was.
    out.write_bytes(b"previous result")
    assert main(["caption", before, after, *base]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == b"previous result"


def test_cancel_leaves_nothing(scene: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    with pytest.raises(PipelineCancelled):
        caption_changes(scene / "before.tif", scene / "after.tif", out,
                        CaptionOptions(model=str(tiny_model), cancel=lambda: True))
    assert list(tmp_path.iterdir()) == []
