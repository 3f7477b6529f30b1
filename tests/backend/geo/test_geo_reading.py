"""PairReader: both dates warped onto one grid, bands, 16-bit stretch, nodata and skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from geo_helpers import smooth_rgb, write_tif
from osgeo import gdal, osr

from hisem.geo import (
    AllNodataError,
    BandError,
    Grid,
    PairReader,
    open_raster,
    parse_aoi,
    select_bands,
    tile_grid,
    working_grid,
)
from hisem.geo import bands as geo_bands
from hisem.geo.crs import make_srs


def _warp_whole(path: Path, grid: Grid) -> np.ndarray:
    """The reference: one gdal.Warp of the whole raster onto the grid, (bands + alpha, H, W)."""
    ds = gdal.Warp("", str(path), format="MEM", dstSRS=grid.crs_wkt, outputBounds=grid.bounds,
                   width=grid.width, height=grid.height, resampleAlg="bilinear", dstAlpha=True)
    return ds.ReadAsArray()


def test_pairing_two_crs_and_two_gsds_matches_a_direct_warp(tmp_path: Path) -> None:
    before = write_tif(tmp_path / "before_utm.tif", smooth_rgb(120, 120, seed=1), gsd=2.0)
    transform = osr.CoordinateTransformation(make_srs("EPSG:32633"), make_srs("EPSG:3857"))
    x0, y0, _ = transform.TransformPoint(500_060.0, 5_000_000.0 - 30.0)
    after = write_tif(tmp_path / "after_merc.tif", smooth_rgb(140, 140, seed=2), epsg=3857, origin=(x0, y0),
                      gsd=3.0)
    grid, _ = working_grid(open_raster(before), open_raster(after), None, 1.5, native_gsd=0.5)
    assert make_srs(grid.crs_wkt).GetAuthorityCode(None) == "32633"
    tiles = tile_grid(grid, 48, 8)
    expected_before, expected_after = _warp_whole(before, grid), _warp_whole(after, grid)
    with PairReader(before, after, grid) as reader:
        for tile in tiles:
            pair = reader.read_tile(tile)
            assert pair.before.shape == pair.after.shape == (3, 48, 48) and pair.before.dtype == np.uint8
            window = np.s_[tile.y_off:tile.y_off + 48, tile.x_off:tile.x_off + 48]
            valid = (expected_before[3][window] > 127) & (expected_after[3][window] > 127)
            np.testing.assert_array_equal(pair.valid, valid)
            for got, want in ((pair.before, expected_before), (pair.after, expected_after)):
                diff = np.abs(got.astype(int) - want[:3][(slice(None), *window)].astype(int))
                assert diff[:, valid].max(initial=0) <= 1
                assert not got[:, ~valid].any()  # invalid pixels are zeroed


def _three_band(path: Path, **kwargs: object) -> Path:
    return write_tif(path, smooth_rgb(64, 64), **kwargs)


def test_nodata_skipping_counts(tmp_path: Path) -> None:
    # Grid 128 x 96 px, tiles of 32 px without overlap: 4 columns x 3 rows.
    before_data = smooth_rgb(96, 128) | 1  # no accidental zeros in the valid part
    before_data[:, :, :50] = 0  # nodata: columns 0-49, so tile column 1 keeps 14/32 < half
    before = write_tif(tmp_path / "b.tif", before_data, nodata=0)
    after_data = np.concatenate([smooth_rgb(96, 128), np.full((1, 96, 128), 255, np.uint8)])
    after_data[3, 64:, 64:] = 0  # alpha: the bottom-right 2 x 1 tiles are transparent
    after = write_tif(tmp_path / "a.tif", after_data, interp=["Red", "Green", "Blue", "Alpha"])
    grid, _ = working_grid(open_raster(before), open_raster(after), None, None, native_gsd=2.0)
    assert (grid.width, grid.height) == (128, 96)  # the native pixels
    with PairReader(before, after, grid, resampling="nearest") as reader:
        pairs = [reader.read_tile(t) for t in tile_grid(grid, 32, 0)]
    fractions = np.array([p.valid_fraction for p in pairs]).reshape(3, 4)
    np.testing.assert_allclose(fractions, [[0, 14 / 32, 1, 1], [0, 14 / 32, 1, 1], [0, 14 / 32, 0, 0]])
    assert sum(p.skip for p in pairs) == 8


def test_polygon_aoi_masks_its_outside(tmp_path: Path) -> None:
    before = _three_band(tmp_path / "b.tif")
    after = _three_band(tmp_path / "a.tif")
    # A triangle over the top-left half of the raster (2 m pixels, 64 px = 128 m).
    triangle = "POLYGON ((500000 5000000,500128 5000000,500000 4999872,500000 5000000))"
    aoi = parse_aoi(triangle, crs="EPSG:32633")
    grid, _ = working_grid(open_raster(before), open_raster(after), aoi, 2.0, native_gsd=2.0)
    (tile,) = tile_grid(grid, 64, 0)
    with PairReader(before, after, grid, aoi=aoi) as reader:
        pair = reader.read_tile(tile)
    row, col = np.mgrid[0:64, 0:64]
    # Pixel centres inside the triangle, and those on its hypotenuse (GDAL's rasteriser counts them).
    np.testing.assert_array_equal(pair.valid, row + col <= 63)
    assert pair.valid_fraction == 2080 / 4096 and not pair.skip


def test_band_selection_by_colour_interpretation_and_16_bit_stretch(tmp_path: Path) -> None:
    y, x = np.mgrid[0:50, 0:50]
    blue = (1000 + 20 * y).astype(np.uint16)
    green = (3000 - 10 * x).astype(np.uint16)
    red = (500 + 40 * x).astype(np.uint16)
    nir = np.full((50, 50), 9999, np.uint16)
    data = np.stack([blue, green, red, nir])
    path = write_tif(tmp_path / "bgrn.tif", data, interp=["Blue", "Green", "Red", "Undefined"])
    info = open_raster(path)
    assert select_bands(info) == (3, 2, 1)
    grid = Grid(info.crs_wkt, *info.geotransform[0:4:3], 2.0, 50, 50)
    (tile,) = tile_grid(grid, 50, 0)
    with PairReader(path, path, grid, resampling="nearest") as reader:
        pair = reader.read_tile(tile)
    for channel, band in enumerate((red, green, blue)):
        lo, hi = np.percentile(band, (2, 98))
        expected = np.rint(np.clip((band - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
        np.testing.assert_array_equal(pair.before[channel], expected)
    assert pair.before[0, 0, 0] == 0 and pair.before[0, 0, -1] == 255  # red grows eastward
    assert pair.before[1, 0, 0] == 255 and pair.before[1, 0, -1] == 0  # green fades eastward
    with PairReader(path, path, grid, bands=(4, 1, 2), after_bands=(1,), resampling="nearest") as reader:
        pair = reader.read_tile(tile)
    assert not pair.before[0].any()  # the constant NIR band maps to black, not to NaN
    np.testing.assert_array_equal(pair.after[0], pair.after[2])  # one band replicated, as asked


def test_band_errors(tmp_path: Path) -> None:
    gray_alpha = write_tif(tmp_path / "ga.tif", smooth_rgb(8, 8)[:2], interp=["Gray", "Alpha"])
    with pytest.raises(BandError, match=r"ga.tif: 1 colour band\(s\) \(Gray, Alpha\)"):
        select_bands(open_raster(gray_alpha))
    assert select_bands(open_raster(gray_alpha), (1,)) == (1, 1, 1)
    with pytest.raises(BandError, match="band 2 is the alpha band"):
        select_bands(open_raster(gray_alpha), (1, 2, 1))
    rgb = open_raster(_three_band(tmp_path / "rgb.tif"))
    assert select_bands(rgb) == (1, 2, 3)  # no colour interpretation: the first three bands
    with pytest.raises(BandError, match="band 5 does not exist"):
        select_bands(rgb, (5, 1, 2))
    with pytest.raises(BandError, match="give 3 band numbers"):
        select_bands(rgb, (1, 2))


def test_all_nodata_and_float_nan(tmp_path: Path) -> None:
    empty = write_tif(tmp_path / "empty.tif", np.zeros((3, 32, 32), np.uint8), nodata=0)
    fine = _three_band(tmp_path / "fine.tif")
    grid = Grid(open_raster(fine).crs_wkt, 500_000.0, 5_000_000.0, 2.0, 32, 32)
    with pytest.raises(AllNodataError, match="empty.tif: every pixel over the working extent is nodata"):
        PairReader(fine, empty, grid)
    nan = write_tif(tmp_path / "nan.tif", np.full((3, 32, 32), np.nan, np.float32), nodata=float("nan"))
    with pytest.raises(AllNodataError, match="nan.tif"):
        PairReader(nan, fine, grid)


def test_stretch_from_a_decimated_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 16-bit ramp read through an 8-px sample: the percentiles come out nearly those of all pixels.
    ramp = np.tile(np.arange(0, 6400, 100, dtype=np.uint16), (64, 1))  # 0..6300 west to east
    path = write_tif(tmp_path / "ramp.tif", np.stack([ramp] * 3))
    monkeypatch.setattr(geo_bands, "SAMPLE_PX", 8)
    grid = Grid(open_raster(path).crs_wkt, 500_000.0, 5_000_000.0, 2.0, 64, 64)
    with PairReader(path, path, grid, resampling="nearest") as reader:
        low, high = reader.before.stretch.low, reader.before.stretch.high
    assert low is not None and high is not None
    assert 0 <= low[0] <= 500 and 5800 <= high[0] <= 6300  # all pixels: 126 and 6174
