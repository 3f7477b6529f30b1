"""Tiny GeoTIFFs written at test time, in whatever CRS, GSD, dtype and band layout a test needs.

Shared by the backend and plugin suites as a plain module (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

import hisem.geo  # noqa: F401  (switches GDAL to exceptions, as the package does)

UTM33_ORIGIN = (500_000.0, 5_000_000.0)  # top-left corner used by most tests, EPSG:32633

_INTERP = {
    "Red": gdal.GCI_RedBand, "Green": gdal.GCI_GreenBand, "Blue": gdal.GCI_BlueBand,
    "Alpha": gdal.GCI_AlphaBand, "Gray": gdal.GCI_GrayIndex, "Undefined": gdal.GCI_Undefined,
}
_TYPES = {np.dtype("uint8"): gdal.GDT_Byte, np.dtype("uint16"): gdal.GDT_UInt16,
          np.dtype("float32"): gdal.GDT_Float32}


def write_tif(path: Path, data: np.ndarray, epsg: int | None = 32633,
              origin: tuple[float, float] = UTM33_ORIGIN, gsd: float | tuple[float, float] = 2.0,
              nodata: float | None = None,
              interp: Sequence[str] | None = None, geotransform: bool = True, tiled: bool = False) -> Path:
    """Write ``data`` (B, H, W) as a GeoTIFF; ``gsd`` may be (x, y) pixel sizes."""
    bands, height, width = data.shape
    options = ["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"] if tiled else []
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, bands, _TYPES[data.dtype], options)
    gx, gy = gsd if isinstance(gsd, tuple) else (gsd, gsd)
    if geotransform:
        ds.SetGeoTransform((origin[0], gx, 0.0, origin[1], 0.0, -gy))
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetSpatialRef(srs)
    for i in range(bands):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(data[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if interp is not None:
            band.SetColorInterpretation(_INTERP[interp[i]])
    ds = None
    return path


def smooth_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(3, H, W) uint8 of slow gradients and waves: bilinear resampling of it is well behaved."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.02, 0.06), rng.uniform(0.02, 0.06), rng.uniform(0, 6.28)
        out.append(127.5 + 100 * np.sin(fx * x + phase) * np.cos(fy * y))
    return np.rint(np.stack(out)).astype(np.uint8)
