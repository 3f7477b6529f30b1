"""Opening a raster: what it is (size, bands, CRS, GSD, nodata) and whether it can be read at all.

A raster is judged from its header before any pixel is decoded: a GeoTIFF of a few hundred KB can
declare one compressed block of 12288² RGB pixels (453 MB once decoded), so the declared block
and raster sizes are capped (``RasterLimits``) before the read check decodes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, gdal_array, ogr

from hisem.geo.crs import check_earth_crs, densified_ring, epsg_code, make_srs, to_wkt
from hisem.geo.errors import GeoError, LimitError, NoCRSError, RasterReadError

# Metres per degree of latitude (mean): good enough for a GSD shown to the user and compared at 2x.
METRES_PER_DEGREE = 111_320.0
_DEFAULT_GEOTRANSFORM = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
MIB = 1 << 20


@dataclass(frozen=True)
class RasterLimits:
    """What a raster may declare, checked from its header before a pixel is decoded (None: no cap).

    The defaults suit files the analyst chose (the command line); ``hisem serve`` sets tighter ones
    for uploads. ``max_block_bytes`` bounds the memory one decoded block costs (all bands of a
    pixel-interleaved block are decoded together); ``max_pixels`` bounds width x height.
    """

    max_block_bytes: int | None = 1024 * MIB
    max_pixels: int | None = 100_000_000_000


@dataclass(frozen=True)
class RasterInfo:
    """What the pairing needs to know about one raster; nothing here holds the file open."""

    path: str
    width: int
    height: int
    band_count: int
    dtype: str  # numpy name of band 1's type, e.g. "uint8", "uint16", "float32"
    geotransform: tuple[float, float, float, float, float, float]
    crs_wkt: str
    epsg: int | None
    gsd_m: float  # native ground sample distance in metres (approximate for geographic CRSs)
    nodata: tuple[float | None, ...]  # per band
    color_interp: tuple[str, ...]  # per band: "Red", "Green", "Blue", "Alpha", "Gray", "Undefined"...
    overview_count: int  # of band 1
    overview_factors: tuple[float, ...] = ()  # of band 1: base width / overview width, finest first

    @property
    def alpha_band(self) -> int | None:
        """1-based index of the alpha band, if any."""
        return next((i + 1 for i, name in enumerate(self.color_interp) if name == "Alpha"), None)

    def pixel_to_geo(self, col: float, row: float) -> tuple[float, float]:
        gt = self.geotransform
        return gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]

    def footprint(self) -> ogr.Geometry:
        """The raster's outline in its own CRS, edges densified (it may be rotated)."""
        corners = [(0, 0), (self.width, 0), (self.width, self.height), (0, self.height)]
        return densified_ring([self.pixel_to_geo(c, r) for c, r in corners])


def gsd_metres(geotransform: tuple[float, ...], crs_wkt: str, centre_lat: float | None = None) -> float:
    """Mean pixel side in metres. Degrees are converted at the raster's centre latitude."""
    gt = geotransform
    x_size, y_size = math.hypot(gt[1], gt[4]), math.hypot(gt[2], gt[5])
    srs = make_srs(crs_wkt)
    if srs.IsGeographic():
        lat = math.radians(centre_lat or 0.0)
        return 0.5 * (x_size * math.cos(lat) + y_size) * METRES_PER_DEGREE
    return 0.5 * (x_size + y_size) * srs.GetLinearUnits()


def block_bytes(ds: gdal.Dataset) -> tuple[int, int, int]:
    """(block width, block height, bytes decoded to read one block) from the header alone.

    A pixel-interleaved block holds every band: reading band 1 decodes them all.
    """
    bands = [ds.GetRasterBand(i) for i in range(1, ds.RasterCount + 1)]
    sizes = [(*b.GetBlockSize(), gdal.GetDataTypeSize(b.DataType) // 8) for b in bands]
    bx, by = max(s[0] for s in sizes), max(s[1] for s in sizes)
    per_block = [s[0] * s[1] * s[2] for s in sizes]
    interleaved = ds.GetMetadataItem("INTERLEAVE", "IMAGE_STRUCTURE") == "PIXEL"
    return bx, by, sum(per_block) if interleaved else max(per_block)


def check_declared_size(ds: gdal.Dataset, path: str, limits: RasterLimits) -> None:
    """LimitError when the header declares more pixels, or bigger blocks, than ``limits`` allow."""
    pixels = ds.RasterXSize * ds.RasterYSize
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        raise LimitError(f"{path}: {ds.RasterXSize} x {ds.RasterYSize} pixels ({pixels / 1e6:,.0f} megapixels), "
                         f"more than the limit of {limits.max_pixels / 1e6:,.0f} megapixels per raster; send the "
                         "AOI only", "max_raster_megapixels", limits.max_pixels / 1e6)
    bx, by, size = block_bytes(ds)
    if limits.max_block_bytes is not None and size > limits.max_block_bytes:
        raise LimitError(f"{path}: one block of its pixels is {bx} x {by} ({size / MIB:,.0f} MiB once decoded), "
                         f"more than the limit of {limits.max_block_bytes / MIB:g} MiB per block; write it with "
                         "small tiles (gdal_translate -co TILED=YES)", "max_block_mb", limits.max_block_bytes / MIB)


def tile_source_pixels(info: RasterInfo, tile_px: int, working_gsd: float) -> int:
    """Source pixels (per band) that warping one ``tile_px`` tile at ``working_gsd`` reads from ``info``.

    GDAL's warp reads the coarsest overview that is not coarser than the working GSD; without
    one, a tile at 200 m over a 0.5 m image reads 400² source pixels for each of its own.
    """
    ratio = working_gsd / info.gsd_m
    factor = max((f for f in (1.0, *info.overview_factors) if f <= ratio * 1.001), default=1.0)
    return math.ceil(tile_px * ratio / factor) ** 2


def _check_readable(ds: gdal.Dataset, path: str) -> None:
    """Read the first and the last block of every band.

    A truncated GeoTIFF opens fine (its header is at the start) and fails only when a block past
    the end of the file is read, so opening proves nothing; the last block is the one to try.
    """
    for index in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(index)
        bw, bh = band.GetBlockSize()
        width, height = ds.RasterXSize, ds.RasterYSize
        last_x, last_y = (width - 1) // bw * bw, (height - 1) // bh * bh
        try:
            band.ReadRaster(0, 0, min(bw, width), min(bh, height))
            band.ReadRaster(last_x, last_y, min(bw, width - last_x), min(bh, height - last_y))
        except RuntimeError as exc:
            raise RasterReadError(f"{path}: band {index} cannot be read (truncated or damaged?): {exc}") from exc


def open_dataset(path: str) -> gdal.Dataset:
    """``gdal.Open`` read-only, with this package's errors."""
    try:
        return gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise RasterReadError(f"{path}: cannot open as a raster: {exc}") from exc


def open_raster(path: str, limits: RasterLimits | None = None, read_check: bool = True) -> RasterInfo:
    """Describe a georeferenced raster (any GDAL format) after checking that its pixels read.

    The header is checked first (CRS, geotransform, ``limits``); only then are the first and the
    last block of every band decoded, unless ``read_check`` is False (metadata only).
    """
    path = str(path)
    ds = open_dataset(path)
    if ds.RasterCount == 0:
        raise RasterReadError(f"{path}: no raster bands (a vector file or a container of subdatasets?)")
    srs = ds.GetSpatialRef()
    gt = tuple(ds.GetGeoTransform(can_return_null=True) or _DEFAULT_GEOTRANSFORM)
    if srs is None:
        raise NoCRSError(f"{path}: the raster has no CRS; assign one first (gdal_edit.py -a_srs EPSG:...)")
    if gt == _DEFAULT_GEOTRANSFORM:
        hint = " (it has GCPs only: warp it first with gdalwarp)" if ds.GetGCPCount() else ""
        raise NoCRSError(f"{path}: the raster has no geotransform{hint}")
    if not all(math.isfinite(v) for v in gt) or gt[1] * gt[5] - gt[2] * gt[4] == 0:
        raise GeoError(f"{path}: degenerate geotransform {gt}")
    check_earth_crs(srs, path)
    check_declared_size(ds, path, limits or RasterLimits())
    if read_check:
        _check_readable(ds, path)
    crs_wkt = to_wkt(srs)
    bands = [ds.GetRasterBand(i) for i in range(1, ds.RasterCount + 1)]
    centre_lat = None
    if srs.IsGeographic():
        centre_lat = gt[3] + 0.5 * ds.RasterXSize * gt[4] + 0.5 * ds.RasterYSize * gt[5]
    return RasterInfo(
        path=path,
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        band_count=ds.RasterCount,
        dtype=np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(bands[0].DataType)).name,
        geotransform=gt,  # type: ignore[arg-type]
        crs_wkt=crs_wkt,
        epsg=epsg_code(srs),
        gsd_m=gsd_metres(gt, crs_wkt, centre_lat),
        nodata=tuple(b.GetNoDataValue() for b in bands),
        color_interp=tuple(gdal.GetColorInterpretationName(b.GetColorInterpretation()) for b in bands),
        overview_count=bands[0].GetOverviewCount(),
        overview_factors=tuple(ds.RasterXSize / bands[0].GetOverview(i).XSize
                               for i in range(bands[0].GetOverviewCount())),
    )
