"""ProbabilityStitcher: feathered blending on disk; seams invisible; nothing left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from hisem.geo import Grid, ProbabilityStitcher, open_raster, tile_grid
from hisem.geo.crs import make_srs, to_wkt
from hisem.geo.stitch import feather_weights

UTM33 = to_wkt(make_srs("EPSG:32633"))


def _grid(width: int, height: int) -> Grid:
    return Grid(UTM33, 500_000.0, 5_000_000.0, 2.0, width, height)


def _read(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


def test_a_global_field_comes_back_unchanged_across_seams(tmp_path: Path) -> None:
    grid = _grid(150, 100)
    y, x = np.mgrid[0:grid.height, 0:grid.width]
    field = (0.5 + 0.4 * np.sin(x / 17.0) * np.cos(y / 11.0)).astype(np.float32)
    out = tmp_path / "prob.tif"
    with ProbabilityStitcher(out, grid, block=32, overlap_px=12) as stitcher:
        for tile in tile_grid(grid, 48, 12):
            stitcher.add(tile, field[tile.y_off:tile.y_off + 48, tile.x_off:tile.x_off + 48])
        assert stitcher.finish() == out
    np.testing.assert_allclose(_read(out), field, atol=1e-6)
    info = open_raster(out)
    assert info.geotransform == grid.geotransform and info.epsg == 32633 and info.dtype == "float32"
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(1).GetBlockSize() == [32, 32]
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prob.tif"]  # no accumulator left


def test_constant_probability_stays_constant(tmp_path: Path) -> None:
    grid = _grid(200, 130)
    with ProbabilityStitcher(tmp_path / "c.tif", grid, overlap_px=16) as stitcher:
        for tile in tile_grid(grid, 64, 16):
            stitcher.add(tile, np.full((64, 64), 0.7, np.float32))
        stitcher.finish()
    np.testing.assert_allclose(_read(tmp_path / "c.tif"), 0.7, atol=1e-6)


def test_overlap_is_a_linear_blend(tmp_path: Path) -> None:
    grid = _grid(112, 64)  # two tiles of 64 px, overlapping by 16 px
    first, second = tile_grid(grid, 64, 16)
    with ProbabilityStitcher(tmp_path / "b.tif", grid, overlap_px=16) as stitcher:
        stitcher.add(first, np.zeros((64, 64), np.float32))
        stitcher.add(second, np.ones((64, 64), np.float32))
        stitcher.finish()
    row = _read(tmp_path / "b.tif")[20]
    np.testing.assert_allclose(row[:48], 0.0)
    np.testing.assert_allclose(row[48:64], (np.arange(16) + 0.5) / 16, atol=1e-6)
    np.testing.assert_allclose(row[64:], 1.0)


def test_invalid_pixels_and_uncovered_areas(tmp_path: Path) -> None:
    grid = _grid(100, 40)
    first, second = tile_grid(grid, 40, 8)[:2]
    valid = np.ones((40, 40), bool)
    valid[:, 34:] = False  # first tile: its right part is nodata, its probabilities there garbage
    with ProbabilityStitcher(tmp_path / "v.tif", grid, overlap_px=8) as stitcher:
        stitcher.add(first, np.where(valid, 0.2, 99.0).astype(np.float32), valid)
        stitcher.add(second, np.full((40, 40), 0.6, np.float32))
        stitcher.finish()
    prob = _read(tmp_path / "v.tif")
    assert second.x_off == 32
    np.testing.assert_allclose(prob[:, 34:72], 0.6, atol=1e-6)  # only the second tile counted there
    np.testing.assert_allclose(prob[:, :32], 0.2, atol=1e-6)  # only the first one there
    assert (prob[:, 32:34] > 0.2).all() and (prob[:, 32:34] < 0.6).all()  # both: blended
    assert np.isnan(prob[:, 72:]).all()  # no tile: nodata
    assert np.isnan(gdal.Open(str(tmp_path / "v.tif")).GetRasterBand(1).GetNoDataValue())


def test_uint8_output_and_padded_tile(tmp_path: Path) -> None:
    grid = _grid(30, 20)  # smaller than one tile
    (tile,) = tile_grid(grid, 64, 8)
    assert tile.padded
    with ProbabilityStitcher(tmp_path / "u.tif", grid, dtype="uint8", overlap_px=8) as stitcher:
        stitcher.add(tile, np.full((64, 64), 0.5, np.float32))
        stitcher.finish()
    prob = _read(tmp_path / "u.tif")
    assert prob.dtype == np.uint8 and prob.shape == (20, 30) and (prob == 128).all()


def test_failure_leaves_nothing_and_keeps_the_old_output(tmp_path: Path) -> None:
    out = tmp_path / "keep.tif"
    out.write_bytes(b"previous result")
    grid = _grid(64, 64)
    with pytest.raises(RuntimeError, match="model crashed"), ProbabilityStitcher(out, grid) as stitcher:
        stitcher.add(tile_grid(grid, 64, 0)[0], np.zeros((64, 64), np.float32))
        raise RuntimeError("model crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tif"]
    assert out.read_bytes() == b"previous result"


def test_feather_weights() -> None:
    w = feather_weights(12, 4)
    ramp = np.array([0.125, 0.375, 0.625, 0.875, 1, 1, 1, 1, 0.875, 0.625, 0.375, 0.125])
    np.testing.assert_allclose(w, np.outer(ramp, ramp))
    assert (w > 0).all() and w.shape == (12, 12)
    assert (feather_weights(8, 0) == 1.0).all()
