"""Coordinate reference systems: parsing, the metric test, the UTM zone, geometry transforms.

Every ``osr.SpatialReference`` made here uses ``OAMS_TRADITIONAL_GIS_ORDER``: with GDAL 3's
default (authority order) EPSG:4326 coordinates are (lat, lon), and a bbox typed as
"lon,lat,lon,lat" would land in the wrong hemisphere without any error.
"""

from __future__ import annotations

import math

from osgeo import ogr, osr

from hisem.geo.errors import CRSError, GeoError, NoCRSError

WGS84_WKT = osr.SRS_WKT_WGS84_LAT_LONG
# Edges of rectangles are densified before a transform: a straight line in one CRS is a curve in
# another, and four transformed corners alone can miss a sliver of the true footprint.
DENSIFY_POINTS_PER_EDGE = 32


def make_srs(crs: str) -> osr.SpatialReference:
    """Parse "EPSG:32633", WKT, PROJJSON or a PROJ string into an x/y-ordered SRS."""
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(crs)
    except RuntimeError as exc:
        raise NoCRSError(f"cannot read the CRS {crs[:80]!r}: {exc}") from exc
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def check_earth_crs(srs: osr.SpatialReference, what: str) -> None:
    """CRSError unless ``srs`` places coordinates on the Earth (it can be transformed to WGS 84).

    An engineering (LOCAL_CS) CRS or one of another celestial body (IAU_2015:49910, Mars) parses
    fine, and then every transform to the working CRS or to WGS 84 fails far from the cause.
    """
    name = srs.GetName() or "unnamed"
    if srs.IsLocal():
        raise CRSError(f"{what}: {name!r} is an engineering (local) CRS, which cannot be placed on the Earth; "
                       "assign a projected or geographic CRS (gdal_edit.py -a_srs EPSG:...)")
    try:
        osr.CoordinateTransformation(srs, make_srs(WGS84_WKT))
    except RuntimeError:
        raise CRSError(f"{what}: the CRS {name!r} cannot be transformed to WGS 84 (a CRS of another planet?); "
                       "use an Earth CRS") from None


def to_wkt(srs: osr.SpatialReference) -> str:
    return srs.ExportToWkt(["FORMAT=WKT2_2018"])


def epsg_code(srs: osr.SpatialReference) -> int | None:
    """The EPSG code when the SRS is (or is recognisably) an EPSG one, else None."""
    clone = srs.Clone()
    if clone.GetAuthorityName(None) != "EPSG":
        try:
            clone.AutoIdentifyEPSG()
        except RuntimeError:  # GDAL raises when nothing matches
            return None
    code = clone.GetAuthorityCode(None)
    return int(code) if clone.GetAuthorityName(None) == "EPSG" and code else None


def is_metric_projected(srs: osr.SpatialReference) -> bool:
    """A projected CRS whose linear unit is the metre (so GSD and areas are in metres)."""
    return bool(srs.IsProjected()) and math.isclose(srs.GetLinearUnits(), 1.0)


def same_crs(a_wkt: str, b_wkt: str) -> bool:
    return bool(make_srs(a_wkt).IsSame(make_srs(b_wkt)))


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone containing (lon, lat): 326zz north, 327zz south.

    The Norway/Svalbard exceptions are ignored: the zone is only a metric working CRS, and a
    neighbouring zone distorts scale by well under 1 % there.
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise GeoError(f"({lon}, {lat}) is not a longitude/latitude")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def transform_geometry(geom: ogr.Geometry, src_wkt: str, dst_wkt: str) -> ogr.Geometry:
    """A transformed copy of ``geom``; the input is left untouched."""
    out = geom.Clone()
    if not same_crs(src_wkt, dst_wkt):
        try:
            out.Transform(osr.CoordinateTransformation(make_srs(src_wkt), make_srs(dst_wkt)))
        except RuntimeError as exc:
            raise GeoError(f"cannot transform a geometry from {make_srs(src_wkt).GetName()!r} to "
                           f"{make_srs(dst_wkt).GetName()!r}: {exc}") from exc
    if not out.IsEmpty() and not all(math.isfinite(v) for v in out.GetEnvelope()):
        raise GeoError(f"a geometry transformed to {make_srs(dst_wkt).GetName()!r} has infinite coordinates "
                       "(outside the range of its CRS?)")
    return out


def densified_ring(corners: list[tuple[float, float]]) -> ogr.Geometry:
    """A polygon through ``corners`` (closed for you) with extra points on every edge."""
    ring = ogr.Geometry(ogr.wkbLinearRing)
    closed = [*corners, corners[0]]
    for (x0, y0), (x1, y1) in zip(closed[:-1], closed[1:], strict=True):
        for k in range(DENSIFY_POINTS_PER_EDGE):
            t = k / DENSIFY_POINTS_PER_EDGE
            ring.AddPoint_2D(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
    ring.AddPoint_2D(*closed[0])
    poly = ogr.Geometry(ogr.wkbPolygon)
    poly.AddGeometry(ring)
    return poly


def box(minx: float, miny: float, maxx: float, maxy: float) -> ogr.Geometry:
    """A rectangle polygon with densified edges, ready to be transformed."""
    return densified_ring([(minx, maxy), (maxx, maxy), (maxx, miny), (minx, miny)])
