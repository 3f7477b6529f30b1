"""Tile layout: coverage, containment, overlaps, indices, padding and the tile limit (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hisem.geo import GeoError, Grid, TooManyTilesError, count_tiles, tile_grid
from hisem.geo.tiles import axis_offsets


def _grid(width: int, height: int, gsd: float = 2.0) -> Grid:
    return Grid("", 500_000.0, 5_000_000.0, gsd, width, height)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[Grid, int, int]:
    size = draw(st.integers(8, 64))
    overlap = draw(st.integers(0, size - 1))
    return _grid(draw(st.integers(1, 300)), draw(st.integers(1, 300))), size, overlap


@settings(max_examples=150, deadline=None)
@given(layouts())
def test_tiles_cover_the_grid_and_stay_inside(layout: tuple[Grid, int, int]) -> None:
    grid, size, overlap = layout
    tiles = tile_grid(grid, size, overlap)
    covered = np.zeros((grid.height, grid.width), bool)
    for tile in tiles:
        covered[tile.y_off:tile.y_off + size, tile.x_off:tile.x_off + size] = True
        assert tile.x_off >= 0 and tile.y_off >= 0
        if grid.width >= size:
            assert tile.x_off + size <= grid.width
        if grid.height >= size:
            assert tile.y_off + size <= grid.height
        assert tile.padded == (grid.width < size or grid.height < size)
        minx, miny, maxx, maxy = tile.bounds
        assert (maxx - minx, maxy - miny) == (size * grid.gsd, size * grid.gsd)
        assert minx == grid.origin_x + tile.x_off * grid.gsd and maxy == grid.origin_y - tile.y_off * grid.gsd
    assert covered.all()
    assert [t.index for t in tiles] == list(range(len(tiles)))
    assert len({(t.row, t.col) for t in tiles}) == len(tiles) == count_tiles(grid, size, overlap)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 500), st.integers(8, 64), st.data())
def test_neighbours_overlap_as_asked(length: int, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    offsets = axis_offsets(length, size, overlap)
    gaps = [b - a for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    assert all(g > 0 for g in gaps)
    # Every step is the stride except the last one, shifted back: it overlaps at least as much.
    assert all(g == size - overlap for g in gaps[:-1])
    assert all(size - g >= overlap for g in gaps[-1:])
    assert offsets[-1] == max(length - size, 0)


def test_small_grid_gets_one_padded_tile() -> None:
    (tile,) = tile_grid(_grid(40, 100), 64, 8)[:1]
    assert tile.padded and tile.size == 64
    assert tile.clip(_grid(40, 100)) == (40, 64)
    assert tile.polygon_wkt == "POLYGON ((500000.0 5000000.0,500128.0 5000000.0,500128.0 4999872.0," \
                               "500000.0 4999872.0,500000.0 5000000.0))"


def test_exact_layout() -> None:
    tiles = tile_grid(_grid(200, 64), 64, 16)
    assert [(t.x_off, t.y_off) for t in tiles] == [(0, 0), (48, 0), (96, 0), (136, 0)]
    assert not any(t.padded for t in tiles)


def test_too_many_tiles() -> None:
    expected = r"makes 12 tiles \(3 rows x 4 columns of 64 px at 2 m\), more than the limit of 10"
    with pytest.raises(TooManyTilesError, match=expected) as err:
        tile_grid(_grid(200, 150), 64, 16, max_tiles=10)
    assert err.value.count == 12
    assert len(tile_grid(_grid(200, 150), 64, 16, max_tiles=12)) == 12


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (64, 64), (64, -1)])
def test_bad_tile_parameters(size: int, overlap: int) -> None:
    with pytest.raises(GeoError, match="overlap"):
        tile_grid(_grid(100, 100), size, overlap)
