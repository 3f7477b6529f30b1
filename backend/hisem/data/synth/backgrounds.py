"""Real single-date images as backgrounds for synthetic change: loading, resampling, cropping.

A background is one real image held in memory at the generator's GSD (resampled once at load
time, so a 0.1 m forest crop and a 0.6 m city tile both look like 0.5 m imagery), as uint8 RGB
plus an int32 raster of building ids (0 = no building) when building footprints cover it.

Where the images come from: ``--real DIR`` folders. Every GeoTIFF or PNG in DIR (not below it)
is an image; its GSD comes from its georeference (metres, or degrees converted at its latitude),
else from ``--real-gsd``. Every GeoJSON / GeoPackage in DIR holds building footprints, which
are rasterised onto the georeferenced images of that folder they overlap (GDAL reprojects them
on the fly). Put images whose footprints do not match (post-event tiles) in another folder.
Panchromatic and 16-bit images are stretched (2-98 %) and repeated to three grey channels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
FOOTPRINT_SUFFIXES = (".geojson", ".gpkg")
# Resampling to a coarser GSD by more than this leaves too few pixels to crop from.
MIN_SIDE_PX = 320


class BackgroundError(ValueError):
    """A --real folder or image that cannot serve as a background."""


@dataclass(frozen=True)
class Background:
    """One real image at the generator's GSD."""

    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    buildings: np.ndarray | None  # (H, W) int32 building ids, 0 = none; None = no footprints

    @property
    def area_px(self) -> int:
        return int(self.rgb.shape[0] * self.rgb.shape[1])


@dataclass(frozen=True)
class Canvas:
    """A crop of a background on the generator's canvas (side x side px)."""

    rgb: np.ndarray  # (3, side, side) float32 in 0..1, channels first like the renderer's canvases
    buildings: np.ndarray | None  # (side, side) int32 ids, or None


def _stretch(band: np.ndarray, nodata: float | None) -> np.ndarray:
    """uint8 as is; anything else linearly stretched between its 2nd and 98th percentiles."""
    if band.dtype == np.uint8:
        return band
    valid = band[band != nodata] if nodata is not None else band.ravel()
    lo, hi = (np.percentile(valid, (2, 98)) if valid.size else (0.0, 1.0))
    scaled = (band.astype(np.float32) - lo) * (255.0 / max(float(hi - lo), 1e-6))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _gsd_of(ds: object) -> float | None:
    """Metres per pixel from a GDAL dataset's georeference; None when it has none."""
    from osgeo import osr

    gt = ds.GetGeoTransform(can_return_null=True)  # type: ignore[attr-defined]
    wkt = ds.GetProjection()  # type: ignore[attr-defined]
    if gt is None or not wkt:
        return None
    srs = osr.SpatialReference(wkt=wkt)
    px = math.hypot(gt[1], gt[2]), math.hypot(gt[4], gt[5])
    if srs.IsGeographic():
        lat = gt[3] + gt[5] * ds.RasterYSize / 2  # type: ignore[attr-defined]
        return (px[0] * 111_320.0 * math.cos(math.radians(lat)) + px[1] * 110_574.0) / 2
    return (px[0] + px[1]) / 2 * srs.GetLinearUnits()


def _read_rgb(path: Path) -> tuple[np.ndarray, object]:
    """(H, W, 3) uint8 from the first three bands (or one band repeated), and the GDAL dataset."""
    from osgeo import gdal

    gdal.UseExceptions()
    ds = gdal.Open(str(path))
    bands = [ds.GetRasterBand(i + 1) for i in range(min(ds.RasterCount, 3))]
    planes = [_stretch(b.ReadAsArray(), b.GetNoDataValue()) for b in bands]
    if len(planes) < 3:
        planes = [planes[0]] * 3
    return np.stack(planes, axis=-1), ds


def _rasterise(ds: object, footprints: Sequence[Path]) -> np.ndarray | None:
    """Building ids (H, W) int32 burnt from the footprint files onto the image's grid; None if none fall on it."""
    from osgeo import gdal, ogr

    w, h = ds.RasterXSize, ds.RasterYSize  # type: ignore[attr-defined]
    ids = np.zeros((h, w), np.int32)
    offset = 0
    for path in footprints:
        src = ogr.Open(str(path))
        layer = src.GetLayer(0)
        first = layer.GetNextFeature()
        layer.ResetReading()
        geom = first.GetGeometryRef() if first is not None else None
        if geom is None or ogr.GT_Flatten(geom.GetGeometryType()) not in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
            continue  # road centrelines and points are not footprints
        target = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Int32)
        target.SetGeoTransform(ds.GetGeoTransform())  # type: ignore[attr-defined]
        target.SetProjection(ds.GetProjection())  # type: ignore[attr-defined]
        # OGR SQL exposes the feature id, so each footprint burns its own value; GDAL reprojects.
        gdal.Rasterize(target, str(path), options=gdal.RasterizeOptions(
            SQLStatement=f'SELECT FID + 1 AS hid, * FROM "{layer.GetName()}"', attribute="hid"))
        burnt = target.GetRasterBand(1).ReadAsArray()
        fresh = burnt > 0
        ids[fresh] = burnt[fresh] + offset
        offset += int(layer.GetFeatureCount()) + 1
    return ids if ids.any() else None


def _resample(rgb: np.ndarray, ids: np.ndarray | None, factor: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale by ``factor`` (native GSD / target GSD): Lanczos for pixels, nearest for ids."""
    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if size == (w, h):
        return rgb, ids
    out = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    if ids is not None:
        ids = np.asarray(Image.fromarray(ids).resize(size, Image.Resampling.NEAREST)).astype(np.int32)
    return out, ids


def load_folder(folder: Path, gsd: float, default_gsd: float | None = None) -> list[Background]:
    """Every usable image of ``folder`` at ``gsd`` m/px, with its footprints (module docstring)."""
    if not folder.is_dir():
        raise BackgroundError(f"--real {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    footprints = [p for p in files if p.suffix.lower() in FOOTPRINT_SUFFIXES]
    out: list[Background] = []
    for path in images:
        rgb, ds = _read_rgb(path)
        native = _gsd_of(ds) or default_gsd
        if native is None:
            log.warning("%s: no georeference and no --real-gsd: skipped", path.name)
            continue
        ids = _rasterise(ds, footprints) if footprints and _gsd_of(ds) else None
        rgb, ids = _resample(rgb, ids, native / gsd)
        if min(rgb.shape[:2]) < MIN_SIDE_PX:
            log.warning("%s: %dx%d px at %.2f m/px is too small to crop from: skipped", path.name,
                        rgb.shape[1], rgb.shape[0], gsd)
            continue
        out.append(Background(f"{folder.name}/{path.name}", rgb, ids))
    if not out:
        raise BackgroundError(f"--real {folder}: no usable GeoTIFF/PNG image (see the log)")
    return out


@lru_cache(maxsize=4)
def load_bank(folders: tuple[str, ...], gsd: float, default_gsd: float | None = None) -> BackgroundBank:
    """The backgrounds of all folders, loaded once per process (every generator worker calls this)."""
    return BackgroundBank([b for f in folders for b in load_folder(Path(f), gsd, default_gsd)])


class BackgroundBank:
    """Backgrounds drawn in proportion to their area, cropped at random position, angle and scale."""

    def __init__(self, backgrounds: list[Background]) -> None:
        if not backgrounds:
            raise BackgroundError("no real backgrounds")
        self.backgrounds = backgrounds
        area = np.array([b.area_px for b in backgrounds], np.float64)
        self.p = area / area.sum()
        self.with_buildings = [i for i, b in enumerate(backgrounds) if b.buildings is not None]

    def crop(self, rng: np.random.Generator, side: int, need_buildings: bool = False) -> Canvas:
        """A side x side canvas: any rotation (aerial images have no up), a flip, scale 0.85-1.2."""
        if need_buildings:
            if not self.with_buildings:
                raise BackgroundError("no real background has building footprints")
            p = self.p[self.with_buildings] / self.p[self.with_buildings].sum()
            bg = self.backgrounds[self.with_buildings[int(rng.choice(len(p), p=p))]]
        else:
            bg = self.backgrounds[int(rng.choice(len(self.p), p=self.p))]
        h, w = bg.rgb.shape[:2]
        angle = rng.uniform(0, 2 * math.pi) if rng.random() < 0.5 else rng.integers(4) * math.pi / 2
        scale = rng.uniform(0.85, 1.2)  # source px per canvas px
        flip = -1.0 if rng.random() < 0.5 else 1.0
        # The rotated canvas must stay inside the image: its half-diagonal bounds the centre.
        reach = side * scale * (abs(math.cos(angle)) + abs(math.sin(angle))) / 2 + 2
        if 2 * reach >= min(h, w):
            scale, angle = min(h, w) / (side * 1.5), 0.0
            reach = side * scale / 2 + 2
        cy, cx = rng.uniform(reach, h - reach), rng.uniform(reach, w - reach)
        c, s = math.cos(angle) * scale, math.sin(angle) * scale
        # Canvas px (u, v) relative to its centre -> source px: [x, y] = A [u * flip, v] + centre.
        theta = torch.tensor([[c * flip * 2 / w * side / 2, -s * 2 / w * side / 2, cx * 2 / w - 1],
                              [s * flip * 2 / h * side / 2, c * 2 / h * side / 2, cy * 2 / h - 1]],
                             dtype=torch.float32)[None]
        grid = F.affine_grid(theta, [1, 1, side, side], align_corners=False)
        img = torch.from_numpy(np.ascontiguousarray(bg.rgb.transpose(2, 0, 1))).float()[None] / 255.0
        rgb = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
        ids = None
        if bg.buildings is not None:
            src = torch.from_numpy(bg.buildings).float()[None, None]
            ids = F.grid_sample(src, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0]
            ids = ids.round().to(torch.int32).numpy()
        return Canvas(rgb.numpy(), ids)
