"""Which bands are R, G, B, and how their values become 0-255 for the model.

8-bit imagery is used as is. Anything else (12/16-bit, reflectance floats) gets a 2-98 %
percentile stretch per band, the QGIS default look; the percentiles are computed once per raster
over the working extent from a decimated read, which GDAL serves from overviews when the file has
them, so a whole-scene stretch never reads the whole scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from hisem.geo.crs import box, transform_geometry
from hisem.geo.errors import AllNodataError, BandError
from hisem.geo.grid import Grid
from hisem.geo.raster import RasterInfo

RGB = ("Red", "Green", "Blue")
SAMPLE_PX = 1024  # longest side of the decimated read used for the stretch


def select_bands(info: RasterInfo, bands: Sequence[int] | None = None) -> tuple[int, int, int]:
    """1-based (R, G, B) band numbers: the caller's, else by colour interpretation, else 1, 2, 3.

    ``bands`` of length 1 replicates one band into grey RGB; only done when asked, because a
    caption model trained on colour sees a grey image as another kind of scene.
    """
    if bands is not None:
        chosen = tuple(int(b) for b in bands)
        if len(chosen) == 1:
            chosen = chosen * 3
        if len(chosen) != 3:
            raise BandError(f"{info.path}: give 3 band numbers (R,G,B) or 1 to replicate, got {list(bands)}")
        for b in chosen:
            if not 1 <= b <= info.band_count:
                raise BandError(f"{info.path}: band {b} does not exist (the raster has {info.band_count})")
            if b == info.alpha_band:
                raise BandError(f"{info.path}: band {b} is the alpha band, not a colour")
        return chosen  # type: ignore[return-value]
    by_name = {name: i + 1 for i, name in enumerate(info.color_interp) if name in RGB}
    if len(by_name) == 3:
        return by_name["Red"], by_name["Green"], by_name["Blue"]
    colour_bands = [i for i in range(1, info.band_count + 1) if i != info.alpha_band]
    if len(colour_bands) < 3:
        raise BandError(
            f"{info.path}: {len(colour_bands)} colour band(s) ({', '.join(info.color_interp)}); the model "
            f"needs RGB: choose three bands (R,G,B), e.g. 1,1,1 to use band 1 as grey"
        )
    return colour_bands[0], colour_bands[1], colour_bands[2]


@dataclass(frozen=True)
class Stretch:
    """Linear map of [low, high] to [0, 255] per band; ``None`` limits mean "already 8-bit"."""

    low: tuple[float, float, float] | None = None
    high: tuple[float, float, float] | None = None

    def apply(self, data: np.ndarray) -> np.ndarray:
        """(3, H, W) any dtype -> (3, H, W) uint8; NaN becomes 0."""
        if self.low is None or self.high is None:
            return data.astype(np.uint8, copy=False)
        low = np.asarray(self.low, np.float32)[:, None, None]  # (3, 1, 1)
        span = np.maximum(np.asarray(self.high, np.float32)[:, None, None] - low, np.finfo(np.float32).tiny)
        scaled = np.clip((data.astype(np.float32) - low) / span, 0.0, 1.0) * 255.0
        return np.nan_to_num(np.rint(scaled), nan=0.0).astype(np.uint8)


def percentile_stretch(samples: Sequence[np.ndarray],
                       percentiles: tuple[float, float] = (2.0, 98.0)) -> Stretch:
    """Stretch from the valid sample values of each band (1-D arrays)."""
    lows, highs = [], []
    for values in samples:
        lo, hi = np.percentile(values, percentiles) if values.size else (0.0, 1.0)
        lows.append(float(lo))
        highs.append(float(hi) if hi > lo else float(lo) + 1.0)  # a constant band maps to black, not NaN
    return Stretch((lows[0], lows[1], lows[2]), (highs[0], highs[1], highs[2]))


def _source_window(ds: gdal.Dataset, info: RasterInfo, grid: Grid) -> tuple[int, int, int, int] | None:
    """Pixel window (xoff, yoff, xsize, ysize) of the raster that covers the grid, or None."""
    outline = transform_geometry(box(*grid.bounds), grid.crs_wkt, info.crs_wkt)
    minx, maxx, miny, maxy = outline.GetEnvelope()
    inverse = gdal.InvGeoTransform(info.geotransform)
    pixels = [gdal.ApplyGeoTransform(inverse, x, y) for x in (minx, maxx) for y in (miny, maxy)]
    cols, rows = [p[0] for p in pixels], [p[1] for p in pixels]
    x0, x1 = max(int(np.floor(min(cols))), 0), min(int(np.ceil(max(cols))), ds.RasterXSize)
    y0, y1 = max(int(np.floor(min(rows))), 0), min(int(np.ceil(max(rows))), ds.RasterYSize)
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def sample_valid_values(ds: gdal.Dataset, info: RasterInfo, grid: Grid,
                        bands: Sequence[int]) -> list[np.ndarray]:
    """Valid values of each band over the grid's extent, from a read decimated to ~SAMPLE_PX.

    Raises AllNodataError when no band has a single valid pixel there.
    """
    window = _source_window(ds, info, grid)
    samples = []
    if window is not None:
        xoff, yoff, xsize, ysize = window
        scale = min(1.0, SAMPLE_PX / max(xsize, ysize))
        buf = {"buf_xsize": max(1, round(xsize * scale)), "buf_ysize": max(1, round(ysize * scale))}
        for b in bands:
            band = ds.GetRasterBand(b)
            values = band.ReadAsArray(xoff, yoff, xsize, ysize, **buf)
            # The mask band covers nodata values, alpha and per-dataset masks alike (0 = invalid).
            valid = band.GetMaskBand().ReadAsArray(xoff, yoff, xsize, ysize, **buf) > 127
            if np.issubdtype(values.dtype, np.floating):
                valid &= np.isfinite(values)
            samples.append(values[valid])
    if not any(s.size for s in samples):
        raise AllNodataError(f"{info.path}: every pixel over the working extent is nodata")
    return samples


def stretch_for(ds: gdal.Dataset, info: RasterInfo, grid: Grid, bands: Sequence[int],
                percentiles: tuple[float, float] = (2.0, 98.0)) -> Stretch:
    """The stretch of this raster over the grid (identity for 8-bit), checking it is not all nodata."""
    samples = sample_valid_values(ds, info, grid, bands)
    return Stretch() if info.dtype == "uint8" else percentile_stretch(samples, percentiles)
