"""Stitching per-tile change probabilities into one GeoTIFF on disk, feathered across tile seams.

Two on-disk float32 bands accumulate sum(w * p) and sum(w) with w a linear ramp over the tile
overlap; ``finish`` divides them block by block into a tiled, compressed GeoTIFF. Memory is one
tile plus one block, never the AOI.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np
from osgeo import gdal

from hisem.geo.errors import GeoError
from hisem.geo.grid import Grid
from hisem.geo.tiles import Tile


def feather_weights(size: int, ramp: int) -> np.ndarray:
    """(size, size) float32 weights: 1 inside, falling linearly over ``ramp`` pixels to each edge.

    Never zero (the ramp starts half a pixel in), so a pixel seen by one tile only, at the grid's
    border, keeps its probability after normalisation; where tiles overlap, each one's weight
    fades out towards its own edge, where a network sees the least context.
    """
    i = np.arange(size, dtype=np.float32) + 0.5
    edge = np.minimum(i, size - i)  # distance of the pixel centre to the nearer edge
    ramp_1d = np.minimum(1.0, edge / ramp) if ramp > 0 else np.ones(size, np.float32)
    return np.outer(ramp_1d, ramp_1d).astype(np.float32)  # (size, size)


class ProbabilityStitcher:
    """Accumulate tile probabilities on ``grid``; ``finish()`` writes the stitched GeoTIFF at ``path``.

    ``dtype="uint8"`` stores round(255 p) with uncovered pixels 0; ``"float32"`` stores p with NaN
    as nodata where no tile contributed. Use as a context manager so that a failed run leaves no
    temporary files.
    """

    def __init__(self, path: str | Path, grid: Grid, block: int = 256, overlap_px: int = 0,
                 dtype: Literal["float32", "uint8"] = "float32") -> None:
        if dtype not in ("float32", "uint8"):
            raise GeoError(f"stitcher dtype must be float32 or uint8, got {dtype!r}")
        if block % 16:
            raise GeoError(f"GeoTIFF blocks are multiples of 16 pixels, got {block}")
        self.path, self.grid, self.block, self.dtype = Path(path), grid, block, dtype
        self.overlap_px = overlap_px
        self._accum_path = self.path.with_name(f".{self.path.name}.accum.tif")
        # Uncompressed and sparse: compressed blocks rewritten many times would fragment the file,
        # while sparse blocks that no tile touches cost no disk at all.
        self._accum = _create_geotiff(self._accum_path, grid, 2, gdal.GDT_Float32, block,
                                      ["SPARSE_OK=TRUE", "COMPRESS=NONE"])
        self._weights: dict[int, np.ndarray] = {}

    def add(self, tile: Tile, prob: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Blend ``prob`` (S, S) in [0, 1] into the tile's window; pixels not ``valid`` count for nothing."""
        if self._accum is None:
            raise GeoError("the stitcher is finished")
        if prob.shape != (tile.size, tile.size):
            raise GeoError(f"tile {tile.index}: probability shape {prob.shape}, expected {(tile.size,) * 2}")
        width, height = tile.clip(self.grid)
        if width <= 0 or height <= 0:
            raise GeoError(f"tile {tile.index} lies outside the grid")
        if tile.size not in self._weights:
            self._weights[tile.size] = feather_weights(tile.size, self.overlap_px)
        weight = self._weights[tile.size]
        if valid is not None:
            weight = weight * valid
        weight = weight[:height, :width]  # a padded tile: only its part inside the grid
        value = np.nan_to_num(prob[:height, :width].astype(np.float32)) * weight
        sums, weights = self._accum.GetRasterBand(1), self._accum.GetRasterBand(2)
        x, y = tile.x_off, tile.y_off
        sums.WriteArray(sums.ReadAsArray(x, y, width, height) + value, x, y)
        weights.WriteArray(weights.ReadAsArray(x, y, width, height) + weight, x, y)

    def finish(self) -> Path:
        """Normalise block by block into ``path`` (written beside it, then renamed) and return it."""
        if self._accum is None:
            raise GeoError("the stitcher is finished")
        tmp = self.path.with_name(f".{self.path.name}.tmp.tif")
        gdal_type, predictor = (gdal.GDT_Float32, 3) if self.dtype == "float32" else (gdal.GDT_Byte, 2)
        out = _create_geotiff(tmp, self.grid, 1, gdal_type, self.block,
                              ["COMPRESS=DEFLATE", f"PREDICTOR={predictor}"])
        band = out.GetRasterBand(1)
        if self.dtype == "float32":
            band.SetNoDataValue(float("nan"))
        sums, weights = self._accum.GetRasterBand(1), self._accum.GetRasterBand(2)
        for y in range(0, self.grid.height, self.block):
            for x in range(0, self.grid.width, self.block):
                w, h = min(self.block, self.grid.width - x), min(self.block, self.grid.height - y)
                total = weights.ReadAsArray(x, y, w, h)
                covered = total > 0
                prob = np.divide(sums.ReadAsArray(x, y, w, h), total, out=np.zeros_like(total), where=covered)
                if self.dtype == "float32":
                    block = np.where(covered, np.clip(prob, 0.0, 1.0), np.nan).astype(np.float32)
                else:
                    block = np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)
                band.WriteArray(block, x, y)
        out = None  # closing flushes the file before it is renamed into place
        os.replace(tmp, self.path)
        self._discard_accumulator()
        return self.path

    def abort(self) -> None:
        """Drop the temporary files without writing the output."""
        self._discard_accumulator()
        self.path.with_name(f".{self.path.name}.tmp.tif").unlink(missing_ok=True)

    def _discard_accumulator(self) -> None:
        self._accum = None
        self._accum_path.unlink(missing_ok=True)

    def __enter__(self) -> ProbabilityStitcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None or self._accum is not None:
            self.abort()


def _create_geotiff(path: Path, grid: Grid, bands: int, gdal_type: int, block: int,
                    options: list[str]) -> gdal.Dataset:
    try:
        ds = gdal.GetDriverByName("GTiff").Create(
            str(path), grid.width, grid.height, bands, gdal_type,
            ["TILED=YES", f"BLOCKXSIZE={block}", f"BLOCKYSIZE={block}", "BIGTIFF=IF_SAFER", *options],
        )
    except RuntimeError as exc:
        raise OSError(f"{path}: cannot create a GeoTIFF: {exc}") from exc
    ds.SetGeoTransform(grid.geotransform)
    ds.SetProjection(grid.crs_wkt)
    return ds
