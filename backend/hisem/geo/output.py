"""Writing results: a GeoPackage (layers ``tiles``, ``changes`` and the table ``run``) and GeoJSON.

Outputs are written to a temporary file beside the target and renamed into place at the end
(same directory, so the rename is atomic): a failed or interrupted run never leaves a
half-written file at the path the analyst asked for, nor destroys the previous result.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from osgeo import ogr

from hisem.geo.crs import make_srs
from hisem.geo.errors import GeoError, OutputExistsError


@dataclass(frozen=True)
class TileFeature:
    """One captioned tile."""

    tile_index: int
    wkt: str
    changed: bool
    change_score: float
    caption: str
    # Other beam candidates as (caption, log-probability score), stored as a JSON list of objects.
    alternatives: tuple[tuple[str, float], ...] = ()
    caption_score: float | None = None  # the chosen caption's score (None: not decoded)


@dataclass(frozen=True)
class ChangeFeature:
    """One change polygon, with the caption of the tile that saw it best."""

    wkt: str
    area_m2: float
    caption: str
    score: float
    tile_index: int | None


# (name, OGR type, subtype) per attribute, in column order.
_TILE_FIELDS = (
    ("tile_index", ogr.OFTInteger, ogr.OFSTNone),
    ("changed", ogr.OFTInteger, ogr.OFSTBoolean),
    ("change_score", ogr.OFTReal, ogr.OFSTNone),
    ("caption", ogr.OFTString, ogr.OFSTNone),
    ("caption_score", ogr.OFTReal, ogr.OFSTNone),
    ("alternatives", ogr.OFTString, ogr.OFSTJSON),
)
_CHANGE_FIELDS = (
    ("area_m2", ogr.OFTReal, ogr.OFSTNone),
    ("caption", ogr.OFTString, ogr.OFSTNone),
    ("score", ogr.OFTReal, ogr.OFSTNone),
    ("tile_index", ogr.OFTInteger, ogr.OFSTNone),
)


def check_output_path(path: str | Path, overwrite: bool) -> Path:
    """Fail early (before any work) on an existing output or a missing directory."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; choose another output or allow overwriting")
    if not path.parent.is_dir():
        raise GeoError(f"{path}: the folder {path.parent} does not exist")
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(chunk):
            digest.update(data)
    return digest.hexdigest()


def _atomic_write(path: str | Path, overwrite: bool, driver: str, write: Callable[[ogr.DataSource], None],
                  options: Sequence[str] = ()) -> Path:
    """Create a data source beside ``path``, let ``write`` fill it, then rename it into place."""
    path = check_output_path(path, overwrite)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    ds = None
    try:
        ds = ogr.GetDriverByName(driver).CreateDataSource(str(tmp), list(options))
        write(ds)
        ds.FlushCache()
        ds = None  # close: SQLite finishes its journal before the rename
        os.replace(tmp, path)
    except BaseException as exc:
        # The failed frames still reference the data source: clear them so that it really closes
        # here, before its file is removed (GDAL would otherwise write into a deleted file later).
        traceback.clear_frames(exc.__traceback__)
        ds = None
        if isinstance(exc, RuntimeError):
            raise OSError(f"{path}: cannot write {driver}: {exc}") from exc
        raise
    finally:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
    return path


def _add_layer(ds: ogr.DataSource, name: str, crs_wkt: str | None, geom_type: int,
               fields: Sequence[tuple[str, int, int]], options: Sequence[str] = ()) -> ogr.Layer:
    srs = make_srs(crs_wkt) if crs_wkt is not None else None
    layer = ds.CreateLayer(name, srs, geom_type, list(options))
    for field_name, field_type, subtype in fields:
        definition = ogr.FieldDefn(field_name, field_type)
        definition.SetSubType(subtype)
        layer.CreateField(definition)
    return layer


def _put(layer: ogr.Layer, values: Mapping[str, object], wkt: str | None = None,
         geom_type: int | None = None) -> None:
    feature = ogr.Feature(layer.GetLayerDefn())
    for key, value in values.items():
        if value is None:
            feature.SetFieldNull(key)
        else:
            feature.SetField(key, value)
    if wkt is not None:
        try:
            geom = ogr.CreateGeometryFromWkt(wkt)
        except RuntimeError as exc:
            raise GeoError(f"layer {layer.GetName()}: invalid geometry {wkt[:60]!r}: {exc}") from exc
        feature.SetGeometry(ogr.ForceTo(geom, geom_type) if geom_type is not None else geom)
    layer.CreateFeature(feature)


def _tile_values(t: TileFeature) -> dict[str, object]:
    return {"tile_index": t.tile_index, "changed": int(t.changed), "change_score": float(t.change_score),
            "caption": t.caption, "caption_score": t.caption_score,
            "alternatives": json.dumps([{"caption": text, "score": round(float(score), 4)}
                                        for text, score in t.alternatives])}


def _change_values(c: ChangeFeature) -> dict[str, object]:
    return {"area_m2": float(c.area_m2), "caption": c.caption, "score": float(c.score),
            "tile_index": c.tile_index}


def write_gpkg(path: str | Path, crs_wkt: str, tiles_features: Sequence[TileFeature],
               change_features: Sequence[ChangeFeature], run_info: Mapping[str, object],
               overwrite: bool = False) -> Path:
    """Write the result GeoPackage atomically and return its path.

    ``run`` is a key/value table: strings are stored as they are, anything else as JSON (model,
    versions, parameters, timings, execution provider, input files and their SHA-256...), so new
    provenance never needs a schema change.
    """
    def write(ds: ogr.DataSource) -> None:
        tiles = _add_layer(ds, "tiles", crs_wkt, ogr.wkbPolygon, _TILE_FIELDS, ["GEOMETRY_NAME=geom"])
        changes = _add_layer(ds, "changes", crs_wkt, ogr.wkbMultiPolygon, _CHANGE_FIELDS,
                             ["GEOMETRY_NAME=geom"])
        run = _add_layer(ds, "run", None, ogr.wkbNone,
                         (("key", ogr.OFTString, ogr.OFSTNone), ("value", ogr.OFTString, ogr.OFSTNone)))
        for layer, rows in ((tiles, tiles_features), (changes, change_features), (run, run_info.items())):
            layer.StartTransaction()  # one transaction per layer: thousands of features in one commit
            for row in rows:
                if isinstance(row, TileFeature):
                    _put(layer, _tile_values(row), row.wkt, ogr.wkbPolygon)
                elif isinstance(row, ChangeFeature):
                    _put(layer, _change_values(row), row.wkt, ogr.wkbMultiPolygon)
                else:
                    key, value = row
                    text = value if isinstance(value, str) else json.dumps(value)
                    _put(layer, {"key": str(key), "value": text})
            layer.CommitTransaction()

    return _atomic_write(path, overwrite, "GPKG", write)


def write_geojson(path: str | Path, crs_wkt: str, features: Sequence[TileFeature | ChangeFeature],
                  overwrite: bool = False) -> Path:
    """One kind of feature as RFC 7946 GeoJSON: reprojected to WGS 84 longitude/latitude.

    RFC 7946 allows no other CRS, and web maps and most tools assume it; the GeoPackage keeps the
    metric working CRS for areas and for QGIS.
    """
    kinds = {type(f) for f in features}
    if len(kinds) > 1:
        raise GeoError("write_geojson: give tiles or changes, not both")
    tiles = kinds == {TileFeature}
    fields, geom_type = (_TILE_FIELDS, ogr.wkbPolygon) if tiles else (_CHANGE_FIELDS, ogr.wkbMultiPolygon)

    def write(ds: ogr.DataSource) -> None:
        # The driver reprojects to EPSG:4326 (x = longitude) itself when RFC7946=YES.
        layer = _add_layer(ds, "tiles" if tiles else "changes", crs_wkt, geom_type, fields,
                           ["RFC7946=YES", "WRITE_NAME=NO"])
        for f in features:
            values = _tile_values(f) if isinstance(f, TileFeature) else _change_values(f)
            _put(layer, values, f.wkt, geom_type)

    return _atomic_write(path, overwrite, "GeoJSON", write)
