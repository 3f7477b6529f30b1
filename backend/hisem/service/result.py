"""The result of a job as the contract's GeoJSON, made from the GeoPackage that the pipeline wrote.

One FeatureCollection: a feature per tile (``kind: "tile"``) and per change region
(``kind: "change"``), in the metric working CRS of the run, named in a ``crs`` member (the
GeoJSON 2008 form that GDAL and QGIS read) and given in full as ``crs_wkt``, so that areas and
the grid stay exact; ``provenance`` carries the ``run`` table plus the job's dates and labels.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from osgeo import ogr, osr


def _crs_member(srs: osr.SpatialReference) -> dict[str, Any]:
    srs = srs.Clone()
    if srs.GetAuthorityCode(None) is None:
        with contextlib.suppress(RuntimeError):  # no EPSG code for this CRS: the WKT names it
            srs.AutoIdentifyEPSG()
    code, authority = srs.GetAuthorityCode(None), srs.GetAuthorityName(None)
    name = f"urn:ogc:def:crs:{authority}::{code}" if code and authority else srs.ExportToWkt()
    return {"type": "name", "properties": {"name": name}}


def _json_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _features(layer: ogr.Layer, kind: str) -> list[dict[str, Any]]:
    features = []
    for feature in layer:
        props: dict[str, Any] = {"kind": kind}
        for i in range(feature.GetFieldCount()):
            name = feature.GetFieldDefnRef(i).GetName()
            props[name] = None if feature.IsFieldNull(i) else feature.GetField(i)
        if kind == "tile":
            props["changed"] = bool(props["changed"])
            props["alternatives"] = _json_value(props.get("alternatives")) or []
        else:
            props["change_id"] = feature.GetFID()
        geometry = feature.GetGeometryRef()  # exported while its feature is alive
        features.append({"type": "Feature", "geometry": json.loads(geometry.ExportToJson()) if geometry else None,
                         "properties": props})
    return features


def result_feature_collection(gpkg: Path, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Tiles, changes and provenance of a result GeoPackage as one GeoJSON object."""
    ds = ogr.Open(str(gpkg))
    try:
        tiles, changes = ds.GetLayerByName("tiles"), ds.GetLayerByName("changes")
        srs = tiles.GetSpatialRef()
        run = {f.GetField("key"): _json_value(f.GetField("value")) for f in ds.GetLayerByName("run")}
        collection = {
            "type": "FeatureCollection",
            "crs": _crs_member(srs),
            "crs_wkt": srs.ExportToWkt(),
            "features": _features(tiles, "tile") + _features(changes, "change"),
            "provenance": {**run, **provenance},
        }
    finally:
        ds = None
    return collection


def write_result_geojson(gpkg: Path, out: Path, provenance: Mapping[str, Any]) -> Path:
    """Write ``result_feature_collection`` to ``out`` atomically (the server streams the file)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result_feature_collection(gpkg, provenance)))
    tmp.replace(out)
    return out
