"""open_raster: metadata, GSD, and a clear error for every kind of unusable file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geo_helpers import smooth_rgb, write_tif
from osgeo import gdal

from hisem.geo import NoCRSError, RasterReadError, open_raster
from hisem.geo.crs import utm_epsg


def test_open_raster_reports_metadata(tmp_path: Path) -> None:
    data = np.concatenate([smooth_rgb(30, 40), np.full((1, 30, 40), 255, np.uint8)])
    path = write_tif(tmp_path / "a.tif", data, nodata=0, interp=["Red", "Green", "Blue", "Alpha"])
    info = open_raster(path)
    assert (info.width, info.height, info.band_count, info.dtype) == (40, 30, 4, "uint8")
    assert info.geotransform == (500_000.0, 2.0, 0.0, 5_000_000.0, 0.0, -2.0)
    assert info.epsg == 32633
    assert info.gsd_m == 2.0
    assert info.nodata == (0.0, 0.0, 0.0, 0.0)
    assert info.color_interp == ("Red", "Green", "Blue", "Alpha")
    assert info.alpha_band == 4
    assert info.overview_count == 0


def test_geographic_gsd_is_converted_to_metres(tmp_path: Path) -> None:
    # 1e-5 degree pixels at 60 N: 1.11 m north-south, 0.56 m east-west.
    path = write_tif(tmp_path / "geo.tif", smooth_rgb(8, 8), epsg=4326, origin=(10.0, 60.0), gsd=1e-5)
    info = open_raster(path)
    assert info.gsd_m == pytest.approx(0.5 * (1.1132 + 1.1132 * np.cos(np.radians(60.0))), rel=1e-3)


def test_overviews_and_vrt(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "a.tif", smooth_rgb(64, 64), tiled=True)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.BuildOverviews("AVERAGE", [2, 4])
    ds = None
    assert open_raster(path).overview_count == 2
    vrt = tmp_path / "a.vrt"
    gdal.Translate(str(vrt), str(path), format="VRT", bandList=[3, 2, 1])
    info = open_raster(vrt)
    assert (info.band_count, info.epsg, info.gsd_m) == (3, 32633, 2.0)


def test_truncated_geotiff_fails_on_open_not_later(tmp_path: Path) -> None:
    whole = write_tif(tmp_path / "whole.tif", smooth_rgb(64, 64), tiled=True)
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    assert gdal.Open(str(truncated)) is not None  # GDAL itself opens it happily...
    with pytest.raises(RasterReadError, match="truncated.tif: band 1 cannot be read"):
        open_raster(truncated)


def test_missing_and_non_raster_files(tmp_path: Path) -> None:
    with pytest.raises(RasterReadError, match="nope.tif: cannot open"):
        open_raster(tmp_path / "nope.tif")
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    with pytest.raises(RasterReadError, match="notes.txt"):
        open_raster(text)
    assert issubclass(RasterReadError, OSError)


def test_raster_without_crs_or_geotransform(tmp_path: Path) -> None:
    with pytest.raises(NoCRSError, match="nocrs.tif: the raster has no CRS"):
        open_raster(write_tif(tmp_path / "nocrs.tif", smooth_rgb(8, 8), epsg=None))
    with pytest.raises(NoCRSError, match="nogt.tif: the raster has no geotransform"):
        open_raster(write_tif(tmp_path / "nogt.tif", smooth_rgb(8, 8), geotransform=False))
    assert issubclass(NoCRSError, ValueError)


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (15.0, 45.0, 32633), (11.999, 45.0, 32632), (12.0, 45.0, 32633), (-70.6, -33.4, 32719),
    (-180.0, 0.0, 32601), (180.0, 10.0, 32660), (2.35, 48.85, 32631),
])
def test_utm_zone(lon: float, lat: float, epsg: int) -> None:
    assert utm_epsg(lon, lat) == epsg


@pytest.mark.parametrize("driver", ["COG", "JP2OpenJPEG", "VRT"])
def test_other_formats(tmp_path: Path, driver: str) -> None:
    if gdal.GetDriverByName(driver) is None:
        pytest.skip(f"this GDAL has no {driver} driver")
    source = write_tif(tmp_path / "src.tif", smooth_rgb(64, 64))
    target = tmp_path / f"out.{ {'COG': 'tif', 'JP2OpenJPEG': 'jp2', 'VRT': 'vrt'}[driver] }"
    options = ["QUALITY=100", "REVERSIBLE=YES"] if driver == "JP2OpenJPEG" else []
    gdal.Translate(str(target), str(source), format=driver, creationOptions=options)
    info = open_raster(target)
    assert (info.width, info.height, info.band_count, info.epsg, info.gsd_m) == (64, 64, 3, 32633, 2.0)
    np.testing.assert_array_equal(gdal.Open(str(target)).ReadAsArray(), smooth_rgb(64, 64))
