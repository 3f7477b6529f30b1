"""From the stitched probability GeoTIFF to change polygons, with bounded memory.

``gdal.Polygonize`` does the tracing (it walks the raster scanline by scanline); the threshold
and the per-polygon mean score are computed block by block through two temporary rasters, so
nothing holds the whole AOI in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr

from hisem.geo.crs import make_srs
from hisem.geo.errors import GeoError
from hisem.geo.raster import open_dataset
from hisem.geo.tiles import Tile


@dataclass(frozen=True)
class ChangeRegion:
    """One connected changed area in the raster's CRS (metric: the working grid's)."""

    wkt: str  # POLYGON
    area_m2: float
    score: float  # mean probability of its pixels

    def geometry(self) -> ogr.Geometry:
        return ogr.CreateGeometryFromWkt(self.wkt)


def _blocks(width: int, height: int, block: int) -> list[tuple[int, int, int, int]]:
    return [(x, y, min(block, width - x), min(block, height - y))
            for y in range(0, height, block) for x in range(0, width, block)]


def _like(path: Path, src: gdal.Dataset, gdal_type: int) -> gdal.Dataset:
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), src.RasterXSize, src.RasterYSize, 1, gdal_type,
        ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"],
    )
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    return ds


def polygonize(prob_tif: str | Path, threshold: float, min_area_m2: float = 0.0, simplify_m: float = 0.0,
               block: int = 512) -> list[ChangeRegion]:
    """Connected areas (4-connected) where the probability >= ``threshold`` (in [0, 1]).

    A uint8 raster is read as 0-255 and compared with ``threshold * 255``. Polygons are simplified
    with ``SimplifyPreserveTopology(simplify_m)`` (so none collapses) and dropped when smaller
    than ``min_area_m2`` after simplification.
    """
    if not 0.0 <= threshold <= 1.0:
        raise GeoError(f"threshold must be within [0, 1], got {threshold}")
    src = open_dataset(str(prob_tif))
    band = src.GetRasterBand(1)
    scale = 255.0 if band.DataType == gdal.GDT_Byte else 1.0
    with tempfile.TemporaryDirectory(prefix="hisem-polygonize-") as tmp:
        mask_ds = _like(Path(tmp) / "mask.tif", src, gdal.GDT_Byte)
        mask_band = mask_ds.GetRasterBand(1)
        for x, y, w, h in _blocks(src.RasterXSize, src.RasterYSize, block):
            prob = band.ReadAsArray(x, y, w, h).astype(np.float32) / scale
            mask_band.WriteArray((np.nan_to_num(prob, nan=-1.0) >= threshold).astype(np.uint8), x, y)
        mask_band.FlushCache()

        srs = make_srs(src.GetProjection())
        memory = ogr.GetDriverByName("Memory").CreateDataSource("regions")
        layer = memory.CreateLayer("regions", srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
        # The mask band as its own mask: zeros (unchanged) are not traced at all.
        gdal.Polygonize(mask_band, mask_band, layer, 0, [])
        geometries = [feature.GetGeometryRef().Clone() for feature in layer]
        scores = _mean_scores(src, layer, Path(tmp) / "labels.tif", len(geometries), scale, block)
        # Close the temporary rasters (and the layer before its data source) before the folder goes.
        mask_band = mask_ds = layer = memory = None
    regions = []
    for geom, score in zip(geometries, scores, strict=True):
        if simplify_m > 0:
            geom = geom.SimplifyPreserveTopology(simplify_m)
        area = geom.GetArea()
        if area >= min_area_m2 and area > 0:
            regions.append(ChangeRegion(geom.ExportToWkt(), area, score))
    return regions


def _mean_scores(src: gdal.Dataset, layer: ogr.Layer, labels_path: Path, count: int, scale: float,
                 block: int) -> list[float]:
    """Mean probability per polygon: burn polygon numbers into a label raster, then bincount by block."""
    if count == 0:
        return []
    label_field = ogr.FieldDefn("label", ogr.OFTInteger)
    layer.CreateField(label_field)
    for number, feature in enumerate(layer, start=1):
        feature.SetField("label", number)
        layer.SetFeature(feature)
    labels = _like(labels_path, src, gdal.GDT_UInt32)
    gdal.RasterizeLayer(labels, [1], layer, options=["ATTRIBUTE=label"])
    sums, counts = np.zeros(count + 1), np.zeros(count + 1)
    band, label_band = src.GetRasterBand(1), labels.GetRasterBand(1)
    for x, y, w, h in _blocks(src.RasterXSize, src.RasterYSize, block):
        label = label_band.ReadAsArray(x, y, w, h).ravel()
        prob = np.nan_to_num(band.ReadAsArray(x, y, w, h).astype(np.float64).ravel() / scale)
        sums += np.bincount(label, weights=prob, minlength=count + 1)
        counts += np.bincount(label, minlength=count + 1)
    return [float(s / c) if c else 0.0 for s, c in zip(sums[1:], counts[1:], strict=True)]


def assign_tile(region: ChangeRegion, tiles: Sequence[Tile]) -> int | None:
    """Index of the tile whose centre is nearest the region's centroid among those containing it.

    With overlapping tiles a region lies in several; the most central view is the one whose
    caption most likely describes it.
    """
    point = region.geometry().Centroid()
    px, py = point.GetX(), point.GetY()
    best: tuple[float, int] | None = None
    for tile in tiles:
        minx, miny, maxx, maxy = tile.bounds
        if minx <= px <= maxx and miny <= py <= maxy:
            cx, cy = tile.centre
            distance = (cx - px) ** 2 + (cy - py) ** 2
            if best is None or distance < best[0]:
                best = (distance, tile.index)
    return None if best is None else best[1]
