"""Reading both dates onto the working grid, one tile at a time.

Each tile is its own small ``gdal.Warp`` to an in-memory dataset of exactly the tile's extent,
CRS and GSD, so memory is one tile per date whatever the AOI. The warp's destination alpha band
is the validity mask: GDAL folds the source nodata values, alpha band, per-dataset mask and
"outside the source footprint" into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from osgeo import gdal, ogr

from hisem.geo.aoi import Aoi
from hisem.geo.bands import Stretch, select_bands, stretch_for
from hisem.geo.crs import make_srs
from hisem.geo.errors import GeoError, RasterReadError
from hisem.geo.grid import Grid
from hisem.geo.raster import open_dataset, open_raster
from hisem.geo.tiles import Tile

RESAMPLING = ("nearest", "bilinear", "cubic", "average", "lanczos")


@dataclass(frozen=True, eq=False)
class TilePair:
    """Both dates of one tile, ready for the model. Invalid pixels are 0 in the images."""

    before: np.ndarray  # (3, S, S) uint8
    after: np.ndarray  # (3, S, S) uint8
    valid: np.ndarray  # (S, S) bool: valid in both dates, inside the grid and the AOI
    valid_fraction: float
    skip: bool  # too little valid data to be worth captioning; the caller counts these


class _DateReader:
    """One date: its open dataset, its RGB bands in the warped output, and its stretch."""

    def __init__(self, path: str | Path, grid: Grid, bands: Sequence[int] | None,
                 resampling: str, percentiles: tuple[float, float]) -> None:
        self.info = open_raster(str(path))
        self.grid = grid
        self.resampling = resampling
        self.rgb = select_bands(self.info, bands)
        self.ds = open_dataset(self.info.path)
        self.stretch: Stretch = stretch_for(self.ds, self.info, grid, self.rgb, percentiles)

    def read(self, tile: Tile) -> tuple[np.ndarray, np.ndarray]:
        """(3, S, S) uint8 image and (S, S) validity of ``tile``."""
        options = gdal.WarpOptions(
            format="MEM", dstSRS=self.grid.crs_wkt, outputBounds=tile.bounds, width=tile.size,
            height=tile.size, resampleAlg=self.resampling, dstAlpha=True,
        )
        try:
            warped = gdal.Warp("", self.ds, options=options)
        except RuntimeError as exc:
            raise RasterReadError(f"{self.info.path}: warping tile {tile.index} failed: {exc}") from exc
        # gdalwarp treats a trailing source alpha band as the source mask and does not copy it, so
        # colour band b is output band b either way, and the destination alpha is the last band.
        data = np.stack([warped.GetRasterBand(b).ReadAsArray() for b in self.rgb])  # (3, S, S)
        valid = warped.GetRasterBand(warped.RasterCount).ReadAsArray() > 127  # (S, S)
        return self.stretch.apply(data), valid

    def close(self) -> None:
        self.ds = None


class PairReader:
    """Reads the before and after rasters onto ``grid``, tile by tile (not thread-safe).

    ``bands`` picks (R, G, B) for both dates (``after_bands`` overrides it for the after date);
    a tile whose valid fraction is below ``min_valid_fraction`` comes back with ``skip=True``.
    Opening checks both rasters and computes their stretches; AllNodataError if either is nodata
    over the whole grid.
    """

    def __init__(
        self,
        before_path: str | Path,
        after_path: str | Path,
        grid: Grid,
        bands: Sequence[int] | None = None,
        *,
        after_bands: Sequence[int] | None = None,
        aoi: Aoi | None = None,
        resampling: str = "bilinear",
        min_valid_fraction: float = 0.5,
        percentiles: tuple[float, float] = (2.0, 98.0),
    ) -> None:
        if resampling not in RESAMPLING:
            raise GeoError(f"resampling {resampling!r}: choose one of {', '.join(RESAMPLING)}")
        self.grid = grid
        self.min_valid_fraction = min_valid_fraction
        self.before = _DateReader(before_path, grid, bands, resampling, percentiles)
        self.after = _DateReader(after_path, grid, after_bands if after_bands is not None else bands,
                                 resampling, percentiles)
        self._aoi = _AoiMask(aoi.to_crs(grid.crs_wkt)) if aoi is not None else None

    def read_tile(self, tile: Tile) -> TilePair:
        before, before_valid = self.before.read(tile)
        after, after_valid = self.after.read(tile)
        valid = before_valid & after_valid
        width, height = tile.clip(self.grid)
        valid[height:, :] = False  # the padding of a tile larger than the grid
        valid[:, width:] = False
        if self._aoi is not None:
            valid &= self._aoi.mask(tile)
        before[:, ~valid] = 0
        after[:, ~valid] = 0
        fraction = float(valid.mean())
        return TilePair(before, after, valid, fraction, skip=fraction < self.min_valid_fraction)

    def close(self) -> None:
        self.before.close()
        self.after.close()
        self._aoi = None

    def __enter__(self) -> PairReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _AoiMask:
    """Rasterises a polygonal AOI per tile, so the corners of a bbox grid outside it are invalid."""

    def __init__(self, aoi: Aoi) -> None:
        self.aoi = aoi
        self.geometry = aoi.geometry()

    def mask(self, tile: Tile) -> np.ndarray:
        """(S, S) bool: pixel centres inside the AOI."""
        if self.geometry.Contains(ogr.CreateGeometryFromWkt(tile.polygon_wkt)):
            return np.ones((tile.size, tile.size), bool)
        # A throw-away in-memory layer per tile: an OGR layer kept on the object could outlive its
        # data source at interpreter exit, which crashes GDAL's Python bindings.
        source = ogr.GetDriverByName("Memory").CreateDataSource("aoi")
        layer = source.CreateLayer("aoi", make_srs(self.aoi.crs_wkt), ogr.wkbUnknown)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(self.geometry)
        layer.CreateFeature(feature)
        target = gdal.GetDriverByName("MEM").Create("", tile.size, tile.size, 1, gdal.GDT_Byte)
        minx, _, maxx, maxy = tile.bounds
        gsd = (maxx - minx) / tile.size
        target.SetGeoTransform((minx, gsd, 0.0, maxy, 0.0, -gsd))
        target.SetProjection(self.aoi.crs_wkt)
        gdal.RasterizeLayer(target, [1], layer, burn_values=[1])
        return target.GetRasterBand(1).ReadAsArray().astype(bool)
