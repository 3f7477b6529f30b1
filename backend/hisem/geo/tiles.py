"""Tiles: overlapping square windows over the working grid, as frozen values (pure maths, no GDAL).

Neighbouring tiles overlap so that a change cut by a tile edge is seen whole by one of them and
the probability masks can be feathered across the seam instead of showing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hisem.geo.errors import GeoError, TooManyTilesError
from hisem.geo.grid import Bounds, Grid


@dataclass(frozen=True)
class Tile:
    """A ``size`` x ``size`` window at (x_off, y_off) pixels of the grid, and where it lies on the ground.

    ``padded`` is True when the grid is narrower or shorter than one tile: the tile then reaches
    past the grid's right/bottom edge and the reader marks that part invalid.
    """

    index: int
    row: int
    col: int
    x_off: int
    y_off: int
    size: int
    bounds: Bounds  # minx, miny, maxx, maxy in the grid's CRS
    padded: bool = False

    @property
    def polygon_wkt(self) -> str:
        minx, miny, maxx, maxy = self.bounds
        return f"POLYGON (({minx} {maxy},{maxx} {maxy},{maxx} {miny},{minx} {miny},{minx} {maxy}))"

    @property
    def centre(self) -> tuple[float, float]:
        minx, miny, maxx, maxy = self.bounds
        return (0.5 * (minx + maxx), 0.5 * (miny + maxy))

    def clip(self, grid: Grid) -> tuple[int, int]:
        """Width and height of the part of the tile inside ``grid``."""
        return min(self.size, grid.width - self.x_off), min(self.size, grid.height - self.y_off)


def axis_offsets(length: int, size: int, overlap: int) -> list[int]:
    """Tile starts along one axis of ``length`` pixels.

    A stride of ``size - overlap``; the last tile is shifted back to end exactly at ``length``
    (overlapping its neighbour more) rather than padded, so the model never sees padding when the
    grid holds at least one tile. A grid shorter than a tile gets one tile at 0.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise GeoError(f"need tile size > 0 and 0 <= overlap < tile size, got {size} and {overlap}")
    if length <= size:
        return [0]
    stride = size - overlap
    count = math.ceil((length - size) / stride) + 1
    return [min(i * stride, length - size) for i in range(count)]


def count_tiles(grid: Grid, size: int, overlap: int) -> int:
    return len(axis_offsets(grid.width, size, overlap)) * len(axis_offsets(grid.height, size, overlap))


def tile_grid(grid: Grid, tile_size_px: int, overlap_px: int, max_tiles: int | None = None) -> list[Tile]:
    """Row-major tiles over ``grid``; TooManyTilesError (before building any) beyond ``max_tiles``."""
    xs = axis_offsets(grid.width, tile_size_px, overlap_px)
    ys = axis_offsets(grid.height, tile_size_px, overlap_px)
    if max_tiles is not None and len(xs) * len(ys) > max_tiles:
        count = len(xs) * len(ys)
        raise TooManyTilesError(
            f"the AOI makes {count} tiles ({len(ys)} rows x {len(xs)} columns of {tile_size_px} px at "
            f"{grid.gsd:g} m), more than the limit of {max_tiles}: use a smaller AOI, a coarser GSD or a "
            f"higher tile limit",
            count,
        )
    padded = grid.width < tile_size_px or grid.height < tile_size_px
    return [
        Tile(
            index=row * len(xs) + col,
            row=row,
            col=col,
            x_off=x,
            y_off=y,
            size=tile_size_px,
            bounds=grid.window_bounds(x, y, tile_size_px, tile_size_px),
            padded=padded,
        )
        for row, y in enumerate(ys)
        for col, x in enumerate(xs)
    ]
