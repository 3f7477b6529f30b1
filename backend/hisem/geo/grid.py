"""The working grid: one CRS, one GSD and one pixel-aligned extent onto which both dates are read.

Pairing is two steps (as in rasterio's warp): compute this grid once from the inputs' metadata,
then warp each raster onto it tile by tile (``hisem.geo.reading``). The grid maths are pure
functions of numbers; only ``working_grid`` touches geometries.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from osgeo import ogr

from hisem.geo.aoi import Aoi
from hisem.geo.crs import WGS84_WKT, is_metric_projected, make_srs, to_wkt, transform_geometry, utm_epsg
from hisem.geo.errors import GeoError, NoOverlapError
from hisem.geo.raster import RasterInfo

log = logging.getLogger(__name__)

Bounds = tuple[float, float, float, float]  # minx, miny, maxx, maxy
# Snapping tolerance in pixels: an extent that is already on the lattice must not grow by one pixel
# because 1000.0 / 0.3 is 3333.3333333333335.
_SNAP_EPS = 1e-6
GSD_RATIO_WARNING = 2.0


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: origin is the top-left corner, pixels are ``gsd`` metres square."""

    crs_wkt: str
    origin_x: float
    origin_y: float
    gsd: float
    width: int
    height: int

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        return (self.origin_x, self.gsd, 0.0, self.origin_y, 0.0, -self.gsd)

    @property
    def bounds(self) -> Bounds:
        return self.window_bounds(0, 0, self.width, self.height)

    def window_bounds(self, x_off: int, y_off: int, width: int, height: int) -> Bounds:
        """Georeferenced bounds of a pixel window (which may reach outside the grid)."""
        return (
            self.origin_x + x_off * self.gsd,
            self.origin_y - (y_off + height) * self.gsd,
            self.origin_x + (x_off + width) * self.gsd,
            self.origin_y - y_off * self.gsd,
        )


def snap_bounds(bounds: Bounds, gsd: float) -> tuple[int, int, int, int]:
    """Outward-snap ``bounds`` to the lattice of multiples of ``gsd``: (ix0, iy0, ix1, iy1).

    Snapping to a global lattice (like ``gdalwarp -tap``) makes two runs over neighbouring AOIs
    share pixel edges, and outward so that partly covered edge pixels are kept (and masked).
    """
    minx, miny, maxx, maxy = bounds
    return (
        math.floor(minx / gsd + _SNAP_EPS),
        math.floor(miny / gsd + _SNAP_EPS),
        math.ceil(maxx / gsd - _SNAP_EPS),
        math.ceil(maxy / gsd - _SNAP_EPS),
    )


def grid_from_bounds(crs_wkt: str, bounds: Bounds, gsd: float) -> Grid:
    if not gsd > 0:
        raise GeoError(f"the GSD must be positive, got {gsd}")
    ix0, iy0, ix1, iy1 = snap_bounds(bounds, gsd)
    width, height = max(ix1 - ix0, 1), max(iy1 - iy0, 1)
    return Grid(crs_wkt, ix0 * gsd, iy1 * gsd, gsd, width, height)


def gsd_warnings(before: RasterInfo, after: RasterInfo, working_gsd: float) -> list[str]:
    """Resolution mismatches worth telling the analyst about (pure)."""
    warnings = []
    coarse, fine = max(before.gsd_m, after.gsd_m), min(before.gsd_m, after.gsd_m)
    if coarse > GSD_RATIO_WARNING * fine:
        warnings.append(
            f"the native GSDs differ {coarse / fine:.1f}x ({before.path}: {before.gsd_m:.3g} m, "
            f"{after.path}: {after.gsd_m:.3g} m): the sharper image will show changes the other cannot"
        )
    for info in (before, after):
        if info.gsd_m > GSD_RATIO_WARNING * working_gsd:
            warnings.append(
                f"{info.path}: native GSD {info.gsd_m:.3g} m is upsampled {info.gsd_m / working_gsd:.1f}x "
                f"to the working GSD {working_gsd:.3g} m"
            )
    return warnings


def working_crs(before: RasterInfo, after: RasterInfo, aoi: Aoi | None) -> str:
    """The before raster's CRS if projected in metres, else the UTM zone of the area's centre."""
    if is_metric_projected(make_srs(before.crs_wkt)):
        return before.crs_wkt
    area = _overlap(before, after, aoi, WGS84_WKT)
    centre = area.Centroid()
    return to_wkt(make_srs(f"EPSG:{utm_epsg(centre.GetX(), centre.GetY())}"))


def _overlap(before: RasterInfo, after: RasterInfo, aoi: Aoi | None, crs_wkt: str) -> ogr.Geometry:
    area = transform_geometry(before.footprint(), before.crs_wkt, crs_wkt)
    area = area.Intersection(transform_geometry(after.footprint(), after.crs_wkt, crs_wkt))
    if area.IsEmpty() or area.GetArea() <= 0:
        raise NoOverlapError(f"{before.path} and {after.path} do not overlap")
    if aoi is not None:
        area = area.Intersection(aoi.to_crs(crs_wkt).geometry())
        if area.IsEmpty() or area.GetArea() <= 0:
            raise NoOverlapError(f"the AOI does not overlap the area of both {before.path} and {after.path}")
    return area


def working_grid(
    before: RasterInfo, after: RasterInfo, aoi: Aoi | None, gsd: float | None, native_gsd: float
) -> tuple[Grid, list[str]]:
    """The grid both dates are read onto, and warnings for the analyst (also logged).

    Extent: AOI ∩ footprint(before) ∩ footprint(after), in the working CRS, snapped outward to
    the GSD (``gsd`` if given, else the model's ``native_gsd``).
    """
    gsd = native_gsd if gsd is None else gsd
    if not gsd > 0:
        raise GeoError(f"the GSD must be positive, got {gsd}")
    crs_wkt = working_crs(before, after, aoi)
    area = _overlap(before, after, aoi, crs_wkt)
    minx, maxx, miny, maxy = area.GetEnvelope()
    grid = grid_from_bounds(crs_wkt, (minx, miny, maxx, maxy), gsd)
    warnings = gsd_warnings(before, after, gsd)
    if aoi is not None:
        aoi_area = aoi.to_crs(crs_wkt).area
        outside = 1.0 - area.GetArea() / aoi_area if aoi_area > 0 else 0.0
        if outside > 0.01:
            warnings.append(f"{outside:.0%} of the AOI lies outside the area that both images cover")
    for message in warnings:
        log.warning("%s", message)
    return grid, warnings
