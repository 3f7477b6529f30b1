"""A job's result: the contract's GeoJSON into a GeoPackage, then styled layers with provenance in their metadata.

Two steps because they run on two threads: ``write_result_gpkg`` is pure OGR and runs in the task's
worker thread; ``add_result_layers`` touches the project and runs on the main thread (the task's
``finished()``). Results live in a GeoPackage, never only in memory layers.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from osgeo import gdal, ogr, osr
from qgis.core import QgsLayerTreeGroup, QgsProject, QgsVectorLayer

PROVENANCE_PROPERTY = "hisem/provenance"

# (name, OGR type, subtype) per attribute, in column order: the backend's GeoPackage schema.
_CHANGE_FIELDS = (
    ("change_id", ogr.OFTInteger, ogr.OFSTNone),
    ("area_m2", ogr.OFTReal, ogr.OFSTNone),
    ("caption", ogr.OFTString, ogr.OFSTNone),
    ("score", ogr.OFTReal, ogr.OFSTNone),
    ("tile_index", ogr.OFTInteger, ogr.OFSTNone),
    # The analyst's review (review.py): "pending" until accepted or rejected; the corrected caption; when (UTC).
    ("review_status", ogr.OFTString, ogr.OFSTNone),
    ("caption_reviewed", ogr.OFTString, ogr.OFSTNone),
    ("reviewed_at", ogr.OFTString, ogr.OFSTNone),
)
REVIEW_PENDING = "pending"
_TILE_FIELDS = (
    ("tile_index", ogr.OFTInteger, ogr.OFSTNone),
    ("changed", ogr.OFTInteger, ogr.OFSTBoolean),
    ("change_score", ogr.OFTReal, ogr.OFSTNone),
    ("caption", ogr.OFTString, ogr.OFSTNone),
    ("caption_score", ogr.OFTReal, ogr.OFSTNone),
    ("alternatives", ogr.OFTString, ogr.OFSTJSON),
)
_RUN_FIELDS = (("key", ogr.OFTString, ogr.OFSTNone), ("value", ogr.OFTString, ogr.OFSTJSON))
# Layer name in the GeoPackage -> its style file and the name it gets in the layer tree.
LAYERS = (("changes", "changes.qml"), ("tiles", "tiles.qml"))


class ResultError(ValueError):
    """The result GeoJSON cannot be written as it is (no CRS, a broken geometry, an unknown feature)."""


# --- GeoJSON -> GeoPackage (worker thread) ------------------------------------------------------


def _srs(result: Mapping[str, Any]) -> osr.SpatialReference:
    """The result's CRS: ``crs_wkt`` in full, else the named ``crs`` member."""
    text = result.get("crs_wkt") or ((result.get("crs") or {}).get("properties") or {}).get("name")
    if not text:
        raise ResultError("the result names no CRS (neither crs_wkt nor crs): cannot place its features")
    srs = osr.SpatialReference()
    if srs.SetFromUserInput(str(text)) != 0:
        raise ResultError(f"the result's CRS cannot be read: {str(text)[:80]!r}")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _geometry(feature: Mapping[str, Any], where: str, target: int) -> ogr.Geometry:
    geometry = feature.get("geometry")
    geom = ogr.CreateGeometryFromJson(json.dumps(geometry)) if isinstance(geometry, dict) else None
    if geom is None or geom.IsEmpty():
        raise ResultError(f"{where}: missing or unreadable geometry {json.dumps(geometry)[:80]}")
    geom = ogr.ForceTo(geom, target)
    if ogr.GT_Flatten(geom.GetGeometryType()) != target:
        raise ResultError(f"{where}: a {geom.GetGeometryName()} is not an area")
    return geom


def _values(props: Mapping[str, Any], kind: str, feature_id: int) -> dict[str, Any]:
    if kind == "change":
        return {"change_id": props.get("change_id", feature_id), "area_m2": props.get("area_m2"),
                "caption": props.get("caption"), "score": props.get("score"), "tile_index": props.get("tile_index"),
                "review_status": REVIEW_PENDING, "caption_reviewed": None, "reviewed_at": None}
    return {"tile_index": props.get("tile_index"), "changed": int(bool(props.get("changed"))),
            "change_score": props.get("change_score"), "caption": props.get("caption"),
            "caption_score": props.get("caption_score"),
            "alternatives": json.dumps(props.get("alternatives") or [])}


def _create_layer(ds: ogr.DataSource, name: str, srs: osr.SpatialReference | None, geom_type: int,
                  fields: tuple[tuple[str, int, int], ...]) -> ogr.Layer:
    options = ["GEOMETRY_NAME=geom", "FID=fid"] if geom_type != ogr.wkbNone else ["FID=fid"]
    layer = ds.CreateLayer(name, srs, geom_type, options)
    if layer is None:
        raise OSError(f"cannot create layer {name}: {gdal.GetLastErrorMsg()}")
    for field_name, field_type, subtype in fields:
        definition = ogr.FieldDefn(field_name, field_type)
        definition.SetSubType(subtype)
        if field_name == "review_status":
            definition.SetDefault(f"'{REVIEW_PENDING}'")  # features added by hand start pending too
        if layer.CreateField(definition) != 0:
            raise OSError(f"cannot create field {name}.{field_name}: {gdal.GetLastErrorMsg()}")
    return layer


def _put(layer: ogr.Layer, values: Mapping[str, Any], geom: ogr.Geometry | None, where: str) -> None:
    feature = ogr.Feature(layer.GetLayerDefn())
    for key, value in values.items():
        if value is None:
            feature.SetFieldNull(key)
        else:
            feature.SetField(key, value)
    if geom is not None:
        feature.SetGeometry(geom)
    if layer.CreateFeature(feature) != 0:
        raise OSError(f"{where}: cannot write the feature: {gdal.GetLastErrorMsg()}")


def _fill(ds: ogr.DataSource, result: Mapping[str, Any]) -> None:
    features = result.get("features")
    if not isinstance(features, list):
        raise ResultError("the result has no feature list: is it the job's result GeoJSON?")
    srs = _srs(result)
    changes = _create_layer(ds, "changes", srs, ogr.wkbMultiPolygon, _CHANGE_FIELDS)
    tiles = _create_layer(ds, "tiles", srs, ogr.wkbPolygon, _TILE_FIELDS)
    run = _create_layer(ds, "run", None, ogr.wkbNone, _RUN_FIELDS)
    targets = {"change": (changes, ogr.wkbMultiPolygon), "tile": (tiles, ogr.wkbPolygon)}
    if ds.StartTransaction() != 0:  # one commit for all: thousands of features in one go
        raise OSError(f"cannot start writing: {gdal.GetLastErrorMsg()}")
    for i, feature in enumerate(features):
        props = (feature.get("properties") or {}) if isinstance(feature, dict) else {}
        kind = props.get("kind")
        if kind not in targets:
            raise ResultError(f"feature {i}: unknown kind {kind!r} (expected 'tile' or 'change')")
        layer, geom_type = targets[kind]
        where = f"feature {i} ({kind})"
        _put(layer, _values(props, kind, i), _geometry(feature, where, geom_type), where)
    for key, value in (result.get("provenance") or {}).items():
        _put(run, {"key": str(key), "value": json.dumps(value)}, None, f"provenance {key!r}")
    if ds.CommitTransaction() != 0:
        raise OSError(f"cannot commit the result: {gdal.GetLastErrorMsg()}")


def write_result_gpkg(result: dict, gpkg_path: Path, overwrite: bool = False) -> Path:
    """Write the result as layers ``changes`` and ``tiles`` and the table ``run``; returns the path.

    Written to a temporary file beside the target and renamed into place (atomic on one file
    system): a failure leaves nothing at ``gpkg_path`` and never destroys a previous result. The
    QML styles go into the file's ``layer_styles`` table before the rename, so every result opens
    styled in a fresh QGIS. OGR plus layers private to this call, so it can run in a worker thread.
    """
    path = Path(gpkg_path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists: choose another file or allow overwriting it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.gpkg")
    ds = None
    try:
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        if ds is None:
            raise OSError(f"cannot create a GeoPackage in {path.parent}: {gdal.GetLastErrorMsg() or 'not writable?'}")
        _fill(ds, result)
        ds.FlushCache()
        ds = None  # close: SQLite finishes its journal before the styles and the rename
        from .export import save_styles_in_gpkg  # export.py imports this module

        save_styles_in_gpkg(tmp)
        os.replace(tmp, path)
    except RuntimeError as exc:  # GDAL in exceptions mode (another module may have turned it on)
        ds = None
        raise OSError(f"cannot write {path}: {exc}") from exc
    finally:
        ds = None
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
    return path


# --- GeoPackage -> styled layers (main thread) --------------------------------------------------


def styles_dir() -> Path:
    """The QML styles: inside the installed plugin first, else the repository's resources/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "resources" / "styles", here.parent / "resources" / "styles"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the plugin's styles are missing (looked in {here / 'resources' / 'styles'} and "
                            f"{here.parent / 'resources' / 'styles'}): reinstall the plugin")


def _text(value: Any) -> str:
    if value is None:
        return "unknown"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def provenance_summary(provenance: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The provenance an analyst asks about first, as (label, text) pairs."""
    dates = provenance.get("dates") or {}
    parameters = provenance.get("parameters") or {}
    versions = provenance.get("versions") or {}
    backend = versions.get("hisem") if isinstance(versions, dict) else None
    return [
        ("Model", _text(provenance.get("model"))),
        ("Before", _text(dates.get("before") if isinstance(dates, dict) else None)),
        ("After", _text(dates.get("after") if isinstance(dates, dict) else None)),
        ("GSD (m)", _text(parameters.get("gsd_m", provenance.get("gsd")) if isinstance(parameters, dict) else None)),
        ("Parameters", _text(parameters)),
        ("Backend version", _text(backend or provenance.get("backend_version"))),
        ("Execution provider", _text(provenance.get("execution_provider"))),
        ("Created", _text(provenance.get("created"))),
        ("Job", _text(provenance.get("job_id"))),
    ]


def set_metadata(layer: QgsVectorLayer, name: str, provenance: Mapping[str, Any]) -> None:
    summary = provenance_summary(provenance)
    metadata = layer.metadata()
    metadata.setTitle(f"HiSem {name}")
    metadata.setType("dataset")
    if provenance.get("job_id"):
        metadata.setIdentifier(str(provenance["job_id"]))
    metadata.setAbstract(
        f"HiSem change captioning result ({name}).\n" + "\n".join(f"{label}: {text}" for label, text in summary))
    metadata.setKeywords({"HiSem": ["change captioning", *(f"{label}: {text}" for label, text in summary
                                                           if label != "Parameters")]})
    layer.setMetadata(metadata)
    layer.setCustomProperty(PROVENANCE_PROPERTY, json.dumps(provenance, sort_keys=True, default=str))


def _load(gpkg: Path, name: str, style: Path, provenance: Mapping[str, Any]) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{gpkg}|layername={name}", name, "ogr")
    if not layer.isValid():
        raise ValueError(f"{gpkg}: cannot open layer {name!r} (is it a HiSem result GeoPackage?)")
    message, ok = layer.loadNamedStyle(str(style))
    if not ok:
        raise ValueError(f"cannot apply the style {style.name} to {name!r}: {message}")
    set_metadata(layer, name, provenance)
    return layer


def add_result_layers(gpkg_path: Path, project: QgsProject, group_name: str,
                      provenance: dict) -> QgsLayerTreeGroup:
    """Load ``changes`` and ``tiles`` styled, with provenance, under a new group at the top of the tree.

    Main thread only. Every layer is opened and styled before the project is touched, so a broken
    GeoPackage or a missing style changes nothing.
    """
    gpkg = Path(gpkg_path)
    if not gpkg.is_file():
        raise FileNotFoundError(f"the result {gpkg} does not exist")
    styles = styles_dir()
    layers = [_load(gpkg, name, styles / qml, provenance) for name, qml in LAYERS]
    root = project.layerTreeRoot()
    group = root.insertGroup(0, group_name)
    try:
        for layer in layers:
            if project.addMapLayer(layer, False) is None:
                raise ValueError(f"the project refused layer {layer.name()!r}")
            group.addLayer(layer)
    except BaseException:
        for layer in layers:
            if project.mapLayer(layer.id()) is not None:
                project.removeMapLayer(layer.id())
        root.removeChildNode(group)
        raise
    return group
