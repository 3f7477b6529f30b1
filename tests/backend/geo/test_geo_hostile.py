"""Hostile or careless inputs the geo layer refuses with a clear GeoError, never a RuntimeError.

Engineering and other-planet CRSs, absurd AOI numbers, and headers that declare more than any
decode should cost (the decompression bomb is refused from its header, before a pixel is read).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from geo_helpers import smooth_rgb, write_tif
from hostile_files import LOCAL_CS, MARS_UTM, relabel_crs, write_block_bomb
from osgeo import gdal

from hisem.geo import GeoError, NoCRSError, open_raster, parse_aoi
from hisem.geo.crs import make_srs, to_wkt, transform_geometry
from hisem.geo.errors import CRSError, LimitError
from hisem.geo.raster import MIB, RasterLimits, tile_source_pixels


@pytest.mark.parametrize(("crs", "words"), [(LOCAL_CS, "engineering (local) CRS"),
                                            (MARS_UTM, "cannot be transformed to WGS 84")])
def test_raster_in_a_crs_off_the_earth(tmp_path: Path, crs: str, words: str) -> None:
    with pytest.raises(CRSError, match=re.escape(words)):
        open_raster(relabel_crs(write_tif(tmp_path / "a.tif", smooth_rgb(16, 16)), tmp_path / "r.tif", crs))


@pytest.mark.parametrize(("aoi", "crs", "words"), [
    ("0,0,10,10", LOCAL_CS, "engineering (local) CRS"),
    ("POLYGON ((0 0,10 0,10 10,0 10,0 0))", MARS_UTM, "cannot be transformed to WGS 84"),
    ("-1e308,-1e308,1e308,1e308", "EPSG:4326", "outside the range of its CRS"),
    ("-1e308,-1e308,1e308,1e308", "EPSG:32633", "outside the range of its CRS"),
    ("1e400,0,2e400,1", "EPSG:4326", "must be finite"),
    ("45.0,15.0,45.1,95.0", "EPSG:4326", "longitude first"),  # latitude 95
    ("POLYGON ((0 0,1e300 0,1e300 1e300,0 0))", "EPSG:32633", "outside the range"),
])
def test_aoi_that_cannot_lie_on_the_earth(aoi: str, crs: str, words: str) -> None:
    with pytest.raises(GeoError, match=re.escape(words)):
        parse_aoi(aoi, crs)


def test_transform_failures_are_geo_errors() -> None:
    square = parse_aoi("POLYGON ((0 0,10 0,10 10,0 10,0 0))", "EPSG:32633").geometry()
    with pytest.raises(GeoError, match="cannot transform a geometry"):
        transform_geometry(square, to_wkt(make_srs("EPSG:32633")), to_wkt(make_srs(LOCAL_CS)))


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = write_block_bomb(tmp_path / "bomb.tif")
    assert bomb.stat().st_size < 600_000  # 453 MB of pixels in under 0.6 MB
    with pytest.raises(LimitError, match=r"12288 x 12288 \(432 MiB once decoded\).*64 MiB per block") as caught:
        open_raster(bomb, RasterLimits(max_block_bytes=64 * MIB))
    assert caught.value.cap == "max_block_mb" and caught.value.limit == 64
    # The command line's default cap (1 GiB) lets it through to the read check, which then decodes it.
    info = open_raster(bomb, read_check=False)
    assert (info.width, info.band_count) == (12288, 3)


def test_declared_raster_size_cap(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "a.tif", smooth_rgb(40, 50))
    with pytest.raises(LimitError, match="50 x 40 pixels") as caught:
        open_raster(path, RasterLimits(max_pixels=1999))
    assert caught.value.cap == "max_raster_megapixels"
    assert open_raster(path, RasterLimits(max_pixels=2000)).width == 50


def test_no_crs_still_comes_first(tmp_path: Path) -> None:
    with pytest.raises(NoCRSError):
        open_raster(write_tif(tmp_path / "n.tif", smooth_rgb(8, 8), epsg=None), RasterLimits(max_pixels=1))


def test_source_pixels_per_tile_use_the_overviews(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "a.tif", smooth_rgb(256, 256), gsd=0.5, tiled=True)
    info = open_raster(path)
    assert tile_source_pixels(info, 64, 0.5) == 64 ** 2
    assert tile_source_pixels(info, 64, 200.0) == (64 * 400) ** 2
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.BuildOverviews("AVERAGE", [2, 4, 8])
    ds = None
    info = open_raster(path)
    assert info.overview_factors == (2.0, 4.0, 8.0)
    assert tile_source_pixels(info, 64, 200.0) == (64 * 50) ** 2  # read from the 1:8 overview
    assert tile_source_pixels(info, 64, 1.5) == (64 * 3 // 2) ** 2  # 1:2 is the coarsest not coarser


def test_geotransform_must_be_finite(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "a.tif", smooth_rgb(8, 8))
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.SetGeoTransform((math.inf, 1.0, 0.0, 0.0, 0.0, -1.0))
    ds = None
    with pytest.raises(GeoError, match="degenerate geotransform"):
        open_raster(path)
