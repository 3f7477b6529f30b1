"""A georeferenced synthetic scene: before.tif, after.tif and the true changes in truth.gpkg.

The town is rendered in one go by ``make_pair`` (fine up to ~4000 px a side: three (H, W, 3)
uint8 images plus the renderer's float buffers, ~1-2 GB at 4000 px), then written as tiled
GeoTIFFs. The after image can be warped to another CRS and GSD, to exercise pairing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr, osr

from hisem.data.synth.pair import make_pair

log = logging.getLogger(__name__)

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

# Where scenes lie: central Europe (15 E, 50 N), inside UTM zone 33 N, the default CRS.
CENTRE_LON_LAT = (15.0, 50.0)
MAX_SIDE_PX = 8000
METRES_PER_DEGREE = 111_320.0  # of latitude: --after-gsd in metres for a geographic CRS
_TIFF = ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2"]


@dataclass(frozen=True)
class Scene:
    before: Path
    after: Path
    truth: Path
    crs: str
    gsd: float
    size_px: int
    changed_px: int


def _srs(crs: str) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)  # x = easting / longitude
    return srs


def _origin(srs: osr.SpatialReference, size_m: float, gsd: float) -> tuple[float, float]:
    """Top-left corner of a scene centred on CENTRE_LON_LAT, snapped to the GSD lattice."""
    transform = osr.CoordinateTransformation(_srs("EPSG:4326"), srs)
    x, y, _ = transform.TransformPoint(*CENTRE_LON_LAT)
    return (round((x - size_m / 2) / gsd) * gsd, round((y + size_m / 2) / gsd) * gsd)


def _write_rgb(path: Path, image: np.ndarray, srs: osr.SpatialReference, gt: tuple[float, ...]) -> None:
    height, width, _ = image.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 3, gdal.GDT_Byte, _TIFF)
    ds.SetGeoTransform(gt)
    ds.SetProjection(srs.ExportToWkt())
    for band, interp in enumerate((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand), start=1):
        ds.GetRasterBand(band).WriteArray(image[:, :, band - 1])
        ds.GetRasterBand(band).SetColorInterpretation(interp)
    ds = None  # close: flush to disk


def _write_truth(path: Path, mask: np.ndarray, srs: osr.SpatialReference, gt: tuple[float, ...]) -> None:
    """The changed pixels as polygons (gdal.Polygonize of the 0/255 mask), one feature per region."""
    height, width = mask.shape
    mem = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(gt)
    mem.SetProjection(srs.ExportToWkt())
    band = mem.GetRasterBand(1)
    band.WriteArray((mask > 0).astype(np.uint8))
    path.unlink(missing_ok=True)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("changes", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    layer.StartTransaction()
    gdal.Polygonize(band, band, layer, 0, [])  # the mask as its own mask: only changed pixels traced
    layer.CommitTransaction()
    layer = ds = None


def write_scene(out_dir: str | Path, size_m: float = 2000.0, gsd: float = 0.5, crs: str = "EPSG:32633",
                after_crs: str | None = None, after_gsd: float | None = None, seed: int = 0) -> Scene:
    """Render and write one scene; the before image and truth.gpkg are in ``crs`` at ``gsd``."""
    size_px = int(round(size_m / gsd))
    if not 8 <= size_px <= MAX_SIDE_PX:
        raise ValueError(f"a scene of {size_m:g} m at {gsd:g} m is {size_px} px a side; "
                         f"keep it within [8, {MAX_SIDE_PX}] px")
    srs = _srs(crs)
    if not srs.IsProjected():
        raise ValueError(f"{crs}: the scene CRS must be projected in metres")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pair = make_pair(seed, size=size_px, gsd=gsd, changed=True)
    x0, y0 = _origin(srs, size_m, gsd)
    gt = (x0, gsd, 0.0, y0, 0.0, -gsd)
    before, after, truth = out / "before.tif", out / "after.tif", out / "truth.gpkg"
    _write_rgb(before, pair.before, srs, gt)
    _write_truth(truth, pair.mask, srs, gt)
    if after_crs is None and after_gsd is None:
        _write_rgb(after, pair.after, srs, gt)
    else:
        native = out / ".after.native.tif"
        _write_rgb(native, pair.after, srs, gt)
        dst = _srs(after_crs or crs)
        res = after_gsd / METRES_PER_DEGREE if after_gsd and dst.IsGeographic() else after_gsd
        options = gdal.WarpOptions(format="GTiff", dstSRS=dst.ExportToWkt(), xRes=res, yRes=res, resampleAlg="bilinear",
                                   creationOptions=_TIFF)
        try:
            gdal.Warp(str(after), str(native), options=options)
        finally:
            native.unlink(missing_ok=True)
    changed = int((pair.mask > 0).sum())
    log.info("scene %s: %d px a side, %d changed px", out, size_px, changed)
    return Scene(before, after, truth, crs, gsd, size_px, changed)
