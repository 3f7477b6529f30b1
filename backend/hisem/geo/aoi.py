"""Area of interest: from WKT, a vector file (the union of its polygons) or a bbox with a CRS."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from osgeo import ogr

from hisem.geo.crs import WGS84_WKT, box, check_earth_crs, make_srs, to_wkt, transform_geometry
from hisem.geo.errors import GeoError, NoCRSError

_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_BBOX = re.compile(rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$")
_EWKT = re.compile(r"^\s*SRID=(\d+);(.*)$", re.IGNORECASE | re.DOTALL)
_POLYGONAL = (ogr.wkbPolygon, ogr.wkbMultiPolygon)
# Longitudes past ±180 are legal in a polygon that crosses the antimeridian; past ±540 they are a typo.
_LON_LIMIT, _LAT_LIMIT = 540.0, 90.0 + 1e-9


@dataclass(frozen=True)
class Aoi:
    """A polygonal area (OGR WKT) and its CRS (WKT); immutable, so it can be shared freely."""

    wkt: str
    crs_wkt: str

    def geometry(self) -> ogr.Geometry:
        return ogr.CreateGeometryFromWkt(self.wkt)

    def to_crs(self, crs_wkt: str) -> Aoi:
        return Aoi(transform_geometry(self.geometry(), self.crs_wkt, crs_wkt).ExportToWkt(), crs_wkt)

    @property
    def area(self) -> float:
        """Area in the units of its CRS (square metres in a metric one)."""
        return self.geometry().GetArea()


def _polygonal_part(geom: ogr.Geometry, what: str) -> ogr.Geometry:
    """The polygons of ``geom`` (collections are searched), made valid, as one (multi)polygon."""
    if geom is None or geom.IsEmpty():
        raise GeoError(f"AOI {what}: empty geometry")
    if not geom.IsValid():
        geom = geom.MakeValid()  # a self-intersecting drawing is common; GEOS repairs it
    geom = geom.Clone()
    geom.FlattenTo2D()  # a Z from a drawn or GPS polygon means nothing to a 2-D grid
    flat = ogr.GT_Flatten(geom.GetGeometryType())
    if flat in _POLYGONAL:
        return geom
    if flat == ogr.wkbGeometryCollection:
        parts = [geom.GetGeometryRef(i) for i in range(geom.GetGeometryCount())]
        polys = [_polygonal_part(p, what) for p in parts if ogr.GT_Flatten(p.GetGeometryType()) in _POLYGONAL]
        if polys:
            union = polys[0]
            for p in polys[1:]:
                union = union.Union(p)
            return union
    raise GeoError(f"AOI {what}: a {geom.GetGeometryName()} is not an area; give a polygon")


def _earth_crs_wkt(crs: str, what: str) -> str:
    """WKT of a CRS given by the user, refused when it cannot be placed on the Earth."""
    srs = make_srs(crs)
    check_earth_crs(srs, f"AOI {what}")
    return to_wkt(srs)


def _on_earth(aoi: Aoi, what: str) -> Aoi:
    """``aoi`` unchanged, or GeoError when its coordinates cannot lie on the Earth in its CRS.

    An AOI in the wrong CRS (latitude first, or metres given as degrees) or with absurd numbers
    (±1e308) would otherwise fail deep in the grid maths, or make a grid the size of a continent.
    """
    srs_name = make_srs(aoi.crs_wkt).GetName()
    try:
        minx, maxx, miny, maxy = transform_geometry(aoi.geometry(), aoi.crs_wkt, WGS84_WKT).GetEnvelope()
    except (GeoError, RuntimeError):  # RuntimeError: OGR cannot even parse the infinite coordinates back
        minx = maxx = miny = maxy = math.inf
    if not (-_LON_LIMIT <= minx <= maxx <= _LON_LIMIT and -_LAT_LIMIT <= miny <= maxy <= _LAT_LIMIT):
        raise GeoError(f"AOI {what}: its coordinates lie outside the range of its CRS ({srs_name}); is the CRS "
                       "right? (EPSG:4326 takes longitude first, then latitude)")
    return aoi


def _from_vector(path: Path, crs: str | None) -> Aoi:
    """Union of every polygon of every layer, in the first layer's CRS."""
    try:
        ds = ogr.Open(str(path))
    except RuntimeError as exc:
        raise GeoError(f"AOI {path}: cannot open as a vector file: {exc}") from exc
    union: ogr.Geometry | None = None
    target_wkt: str | None = None
    for layer in ds:
        layer_srs = layer.GetSpatialRef()
        if layer_srs is not None:
            check_earth_crs(layer_srs, f"AOI {path}")
            layer_wkt = to_wkt(layer_srs)
        elif crs:
            layer_wkt = _earth_crs_wkt(crs, str(path))
        else:
            raise NoCRSError(f"AOI {path}: layer {layer.GetName()!r} has no CRS; give one (e.g. EPSG:4326)")
        target_wkt = target_wkt or layer_wkt
        for feature in layer:
            geom = feature.GetGeometryRef()
            kind = ogr.GT_Flatten(geom.GetGeometryType()) if geom is not None else None
            if kind not in (*_POLYGONAL, ogr.wkbGeometryCollection):
                continue
            part = transform_geometry(_polygonal_part(geom, str(path)), layer_wkt, target_wkt)
            union = part if union is None else union.Union(part)
    if union is None or target_wkt is None or union.IsEmpty():
        raise GeoError(f"AOI {path}: the file holds no polygon")
    return _on_earth(Aoi(union.ExportToWkt(), target_wkt), str(path))


def _is_file(text: str) -> bool:
    """True for an existing file; long WKT is not a path, and stat() says so by raising."""
    try:
        return Path(text).is_file()
    except OSError:  # e.g. ENAMETOOLONG for a WKT string of a few hundred characters
        return False


def parse_aoi(text_or_path: str | Path, crs: str | None = None, allow_files: bool = True) -> Aoi:
    """Read an AOI given as a vector file, "minx,miny,maxx,maxy", WKT or EWKT ("SRID=4326;POLYGON...").

    ``crs`` ("EPSG:4326", WKT...) is required for a bbox or plain WKT and used for a vector layer
    only when the layer has none. EPSG:4326 coordinates are longitude first, as GIS users type them.
    ``allow_files=False`` (the HTTP service) never opens a path, whatever the text says.
    """
    text = str(text_or_path).strip()
    if allow_files and _is_file(text):
        return _from_vector(Path(text), crs)
    if match := _BBOX.match(text):
        minx, miny, maxx, maxy = (float(v) for v in match.groups())
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
            raise GeoError(f"AOI bbox {text!r}: the coordinates must be finite numbers")
        if not (minx < maxx and miny < maxy):
            raise GeoError(f"AOI bbox {text!r}: expected minx,miny,maxx,maxy with min < max")
        if crs is None:
            raise NoCRSError(f"AOI bbox {text!r}: give its CRS (e.g. EPSG:4326)")
        return _on_earth(Aoi(box(minx, miny, maxx, maxy).ExportToWkt(), _earth_crs_wkt(crs, f"bbox {text!r}")),
                         f"bbox {text!r}")
    if match := _EWKT.match(text):
        crs, text = f"EPSG:{match.group(1)}", match.group(2)
    try:
        geom = ogr.CreateGeometryFromWkt(text)
    except RuntimeError as exc:
        raise GeoError(f"AOI {text[:60]!r}: neither a file, a bbox nor WKT ({exc})") from exc
    if crs is None:
        raise NoCRSError(f"AOI {text[:60]!r}: give its CRS (e.g. EPSG:4326)")
    what = repr(text[:60])
    return _on_earth(Aoi(_polygonal_part(geom, what).ExportToWkt(), _earth_crs_wkt(crs, what)), what)
