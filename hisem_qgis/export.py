"""Results that leave QGIS: styles saved inside the GeoPackage, and the annotated map (PDF/PNG)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osgeo import gdal, ogr
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFillSymbol,
    QgsGeometry,
    QgsGraduatedSymbolRenderer,
    QgsLayoutExporter,
    QgsLayoutItemAttributeTable,
    QgsLayoutItemMap,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsLayoutTableColumn,
    QgsMapLayer,
    QgsPrintLayout,
    QgsProject,
    QgsRasterLayer,
    QgsReadWriteContext,
    QgsRectangle,
    QgsScaleBarSettings,
    QgsSimpleFillSymbolLayer,
    QgsSingleSymbolRenderer,
    QgsUnitTypes,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtXml import QDomDocument

from .layers import LAYERS, styles_dir
from .metadata_info import plugin_version
from .review import ACCEPTED, NOT_REJECTED, PENDING, REJECTED, REVIEW_STATUSES, review_rows


def save_styles_in_gpkg(gpkg_path: Path) -> None:
    """Store the plugin's QML styles as the default styles of ``changes`` and ``tiles`` in the file.

    QGIS applies a GeoPackage's default ``layer_styles`` entry when it opens the layer, so the result
    looks the same in a fresh QGIS (or a colleague's) without the plugin. Layers private to this
    call: safe in a worker thread. Meant for a file no layer has open yet (``write_result_gpkg``
    calls it before the file takes its name): QGIS 3.22 can block writing the style table of a
    GeoPackage that other layers of the process are reading.
    """
    styles = styles_dir()
    for name, qml in LAYERS:
        layer = QgsVectorLayer(f"{gpkg_path}|layername={name}", name, "ogr")
        if not layer.isValid():
            raise OSError(f"{gpkg_path}: cannot open layer {name!r} to store its style")
        message, ok = layer.loadNamedStyle(str(styles / qml), True)  # the file, not a stored style
        if not ok:
            raise OSError(f"cannot read the style {qml}: {message}")
        error = layer.saveStyleToDatabase(name, f"HiSem {name} style", True, "")
        if error:
            raise OSError(f"{gpkg_path}: cannot store the {name} style in the GeoPackage: {error}")


# --- the annotated map -----------------------------------------------------------------------------

TEMPLATE = "hisem_map.qpt"
MAX_TABLE_ROWS = 22  # what the caption table's frame holds at two lines a caption; the rest is counted
MAP_BOX_MM = (93.0, 150.0)  # the room each map item has in the template (width, height)
NORTH_ARROW = "arrows/NorthArrow_02.svg"


class ExportError(RuntimeError):
    """The map could not be built or written (missing template, unreadable result, exporter failure)."""


def layouts_dir() -> Path:
    """The print-layout templates: inside the installed plugin first, else the repository's resources/."""
    styles = styles_dir()  # resources/styles of the same tree
    folder = styles.parent / "layouts"
    if not (folder / TEMPLATE).is_file():
        raise FileNotFoundError(f"the map template {folder / TEMPLATE} is missing: reinstall the plugin")
    return folder


def read_provenance(gpkg_path: Path) -> dict[str, Any]:
    """The ``run`` table of a result as a dict ({} for a GeoPackage without one)."""
    ds = ogr.Open(str(gpkg_path))
    if ds is None:
        raise ExportError(f"cannot open {gpkg_path}: {gdal.GetLastErrorMsg() or 'not a GeoPackage?'}")
    table = ds.GetLayerByName("run")
    provenance: dict[str, Any] = {}
    if table is not None:
        for feature in table:
            try:
                provenance[feature.GetField("key")] = json.loads(feature.GetField("value"))
            except (TypeError, ValueError):
                provenance[feature.GetField("key")] = feature.GetField("value")
    ds = None
    return provenance


def _dates(provenance: dict[str, Any], before: QgsRasterLayer | None,
           after: QgsRasterLayer | None) -> tuple[str, str]:
    """The two dates of the run, else the layers' names: what the title and the map headings say."""
    dates = provenance.get("dates") if isinstance(provenance.get("dates"), dict) else {}
    names = provenance.get("layers") if isinstance(provenance.get("layers"), dict) else {}
    labels = provenance.get("labels") if isinstance(provenance.get("labels"), dict) else {}

    def pick(key: str, layer: QgsRasterLayer | None) -> str:
        return str(dates.get(key) or (layer.name() if layer is not None else None) or names.get(key)
                   or labels.get(key) or key)

    return pick("before", before), pick("after", after)


def footer_text(provenance: dict[str, Any], counts: dict[str, int]) -> str:
    """Provenance in two lines: what produced the captions, and how much of them a person checked."""
    parameters = provenance.get("parameters") if isinstance(provenance.get("parameters"), dict) else {}
    versions = provenance.get("versions") if isinstance(provenance.get("versions"), dict) else {}
    backend = provenance.get("backend") if isinstance(provenance.get("backend"), dict) else {}
    gsd = parameters.get("gsd_m", parameters.get("gsd", provenance.get("gsd")))
    created = str(provenance.get("created") or "unknown")[:10]
    first = " · ".join([
        f"Model: {provenance.get('model') or 'unknown'}",
        f"GSD: {gsd} m" if gsd else "GSD: unknown",
        f"HiSem backend {versions.get('hisem') or backend.get('version') or 'unknown'}",
        f"run {created}" + (f" (job {provenance['job_id']})" if provenance.get("job_id") else ""),
        f"map: HiSem for QGIS {plugin_version()}, {datetime.now(UTC):%Y-%m-%d}",
    ])
    second = (f"Captions are generated by the model; {counts.get(ACCEPTED, 0)} accepted and {counts.get(PENDING, 0)} "
              f"not yet reviewed by an analyst; {counts.get(REJECTED, 0)} rejected change(s) not shown.")
    return f"{first}\n{second}"


def _open_changes(gpkg: Path) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{gpkg}|layername=changes", "Change (score)", "ogr")
    if not layer.isValid():
        raise ExportError(f"{gpkg}: no layer 'changes' (is it a HiSem result GeoPackage?)")
    message, ok = layer.loadNamedStyle(str(styles_dir() / "changes.qml"), True)
    if not ok:
        raise ExportError(f"cannot apply the changes style: {message}")
    return layer


def _outlined(changes: QgsVectorLayer) -> None:
    """Outline the changes (colour by score, white halo) so the imagery inside them stays visible."""
    renderer = changes.renderer()
    if not isinstance(renderer, QgsGraduatedSymbolRenderer):
        return
    ranges = renderer.ranges()
    for i, class_range in enumerate(ranges):
        symbol = class_range.symbol().clone()
        colour = QColor(symbol.color())
        colour.setAlpha(255)
        outline = QgsSimpleFillSymbolLayer(colour, Qt.BrushStyle.NoBrush, colour.darker(115),
                                           Qt.PenStyle.SolidLine, 0.7)
        halo = QgsSimpleFillSymbolLayer(colour, Qt.BrushStyle.NoBrush, QColor(255, 255, 255, 200),
                                        Qt.PenStyle.SolidLine, 1.3)
        while symbol.symbolLayerCount():
            symbol.deleteSymbolLayer(0)
        symbol.appendSymbolLayer(halo)
        symbol.appendSymbolLayer(outline)
        renderer.updateRangeSymbol(i, symbol)


def _nice(value: float, steps: tuple[float, ...] = (1, 1.2, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8, 10)) -> float:
    """A round number at or above ``value`` (``steps`` × 10ⁿ): scales and distances people read at a glance."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in steps if step * power >= value * 0.999)


def _scalebar(layout: QgsPrintLayout, map_item: QgsLayoutItemMap, x: float, y: float) -> None:
    scalebar = _item(layout, "scalebar")
    scalebar.setLinkedMap(map_item)
    scalebar.setUnits(QgsUnitTypes.DistanceUnit.DistanceMeters)
    scalebar.setSegmentSizeMode(QgsScaleBarSettings.SegmentSizeMode.SegmentSizeFixed)
    scalebar.setUnitsPerSegment(_nice(map_item.extent().width() / 10, (1, 2, 5, 10)))  # a bar of a fifth or so
    scalebar.setNumberOfSegments(2)
    scalebar.setNumberOfSegmentsLeft(0)
    scalebar.resizeToMinimumWidth()
    scalebar.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutUnit.LayoutMillimeters))


def _aoi_layer(gpkg: Path, crs: QgsCoordinateReferenceSystem) -> QgsVectorLayer | None:
    """The analysed area (the union of the tiles) as a dashed outline: where "no change" means something."""
    tiles = QgsVectorLayer(f"{gpkg}|layername=tiles", "tiles", "ogr")
    if not tiles.isValid() or tiles.featureCount() == 0:
        return None
    union = QgsGeometry.unaryUnion([f.geometry() for f in tiles.getFeatures() if f.hasGeometry()])
    layer = QgsVectorLayer(f"Polygon?crs={crs.authid() or 'EPSG:4326'}", "Area analysed", "memory")
    if not crs.authid():
        layer.setCrs(crs)
    feature = QgsFeature()
    feature.setGeometry(union)
    layer.dataProvider().addFeatures([feature])
    symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": "0,200,255,255", "outline_width": "0.5",
                                         "outline_style": "dash"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    return layer


def _fit(box: QgsRectangle, width_mm: float, height_mm: float) -> tuple[float, float]:
    """The map item's size: the extent's shape inside the template's room, so no space is wasted."""
    aspect = box.width() / box.height() if box.height() > 0 else 1.0
    if width_mm / aspect <= height_mm:
        return width_mm, width_mm / aspect
    return height_mm * aspect, height_mm


def _item(layout: QgsPrintLayout, item_id: str) -> Any:
    item = layout.itemById(item_id)
    if item is None:
        raise ExportError(f"the map template has no item {item_id!r}: it was edited; reinstall the plugin")
    return item


def _map_extent(changes: QgsVectorLayer, aoi: QgsVectorLayer | None, extent: QgsRectangle | None,
                extent_crs: QgsCoordinateReferenceSystem | None, project: QgsProject) -> QgsRectangle:
    if extent is not None and not extent.isEmpty():
        source_crs = extent_crs if extent_crs is not None and extent_crs.isValid() else changes.crs()
        transform = QgsCoordinateTransform(source_crs, changes.crs(), project.transformContext())
        return transform.transformBoundingBox(extent)
    box = QgsRectangle(aoi.extent()) if aoi is not None else QgsRectangle()
    if changes.featureCount() > 0:
        if box.isEmpty():
            box = QgsRectangle(changes.extent())
        else:
            box.combineExtentWith(changes.extent())
    if box.isEmpty():
        raise ExportError("the result has neither changes nor tiles: there is nothing to map")
    box.grow(max(box.width(), box.height()) * 0.03)  # the AOI's outline inside the frame
    return box


def _caption_table(layout: QgsPrintLayout, changes: QgsVectorLayer, map_item: QgsLayoutItemMap, shown: int) -> None:
    table = next((f for f in layout.multiFrames() if isinstance(f, QgsLayoutItemAttributeTable)), None)
    if table is None:
        raise ExportError("the map template has no caption table: reinstall the plugin")
    table.setVectorLayer(changes)
    table.setMap(map_item)
    table.setDisplayOnlyVisibleFeatures(True)  # a map of the current view lists the changes it shows
    columns = []
    caption_expression = ('coalesce("caption_reviewed", "caption")' if changes.fields().indexOf("caption_reviewed") >= 0
                          else '"caption"')
    for heading, expression, width, align in (("No.", '"change_id"', 9.0, Qt.AlignmentFlag.AlignHCenter),
                                              ("Caption", caption_expression, 50.0, Qt.AlignmentFlag.AlignLeft),
                                              ("Area m²", 'format_number("area_m2", 0)', 15.0,
                                               Qt.AlignmentFlag.AlignRight)):
        column = QgsLayoutTableColumn(heading)
        column.setAttribute(expression)
        column.setWidth(width)
        column.setHAlignment(align)
        columns.append(column)
    table.setColumns(columns)
    sort = QgsLayoutTableColumn("No.")
    sort.setAttribute('"change_id"')
    table.setSortColumns([sort])
    table.setMaximumNumberOfFeatures(MAX_TABLE_ROWS)
    note = _item(layout, "captions_note")
    note.setText(f"… and {shown - MAX_TABLE_ROWS} more changes: see the GeoPackage" if shown > MAX_TABLE_ROWS else "")
    table.refresh()


def _legend(layout: QgsPrintLayout, layers: list[QgsMapLayer]) -> None:
    legend = _item(layout, "legend")
    legend.setAutoUpdateModel(False)
    root = legend.model().rootGroup()
    root.clear()
    for layer in layers:
        root.addLayer(layer)
    legend.adjustBoxSize()


def _north_arrow(layout: QgsPrintLayout, map_item: QgsLayoutItemMap) -> None:
    north = _item(layout, "north")
    svg = next((Path(p) / NORTH_ARROW for p in QgsApplication.svgPaths() if (Path(p) / NORTH_ARROW).is_file()), None)
    if svg is None:  # a QGIS without its SVG library: no arrow rather than a broken picture
        north.setVisibility(False)
        return
    north.setPicturePath(str(svg))
    north.setLinkedMap(map_item)


def build_layout(project: QgsProject, gpkg: Path, before: QgsRasterLayer | None, after: QgsRasterLayer | None,
                 title: str | None, extent: QgsRectangle | None,
                 extent_crs: QgsCoordinateReferenceSystem | None) -> QgsPrintLayout:
    """The filled-in template; its layers live in ``project`` (never the user's)."""
    provenance = read_provenance(gpkg)
    changes = _open_changes(gpkg)
    counts = {status: 0 for status in REVIEW_STATUSES}
    for row in review_rows(changes):
        counts[row.status] = counts.get(row.status, 0) + 1
    if changes.fields().indexOf("review_status") >= 0:
        changes.setSubsetString(NOT_REJECTED)  # the map and its table show what the analyst kept
    _outlined(changes)
    aoi = _aoi_layer(gpkg, changes.crs())
    rasters = {key: layer.clone() if layer is not None else None for key, layer in (("before", before),
                                                                                     ("after", after))}
    project.setCrs(changes.crs())
    project.addMapLayers([layer for layer in (changes, aoi, *rasters.values()) if layer is not None])
    box = _map_extent(changes, aoi, extent, extent_crs, project)

    document = QDomDocument()
    template = layouts_dir() / TEMPLATE
    if not document.setContent(template.read_text(encoding="utf-8")):
        raise ExportError(f"the map template {template} is not valid XML")
    layout = QgsPrintLayout(project)
    _items, ok = layout.loadFromTemplate(document, QgsReadWriteContext())
    if not ok:
        raise ExportError(f"QGIS cannot read the map template {template}")
    date_before, date_after = _dates(provenance, before, after)
    width, height = _fit(box, *MAP_BOX_MM)
    maps = {}
    for key in ("before", "after"):
        map_item = _item(layout, f"map_{key}")
        map_item.attemptResize(QgsLayoutSize(width, height, QgsUnitTypes.LayoutUnit.LayoutMillimeters))
        map_item.setCrs(changes.crs())
        # Each map renders exactly its own date's image under the changes, whatever the project shows.
        map_item.setKeepLayerSet(True)
        map_item.setLayers([layer for layer in (changes, aoi, rasters[key]) if layer is not None])
        map_item.setExtent(box)
        map_item.setScale(_nice(map_item.scale()))  # 1:2,500 rather than 1:2,318; the extent grows < 25 %
        _item(layout, f"label_{key}").setText(f"{key.title()} · {date_before if key == 'before' else date_after}")
        maps[key] = map_item
    below = maps["before"].pagePos().y() + height + 3.0
    _scalebar(layout, maps["before"], maps["before"].pagePos().x(), below)
    north = _item(layout, "north")
    north.attemptMove(QgsLayoutPoint(maps["after"].pagePos().x() + width - north.rect().width(), below,
                                     QgsUnitTypes.LayoutUnit.LayoutMillimeters))
    _north_arrow(layout, maps["after"])
    shown = counts[PENDING] + counts[ACCEPTED]
    shown_box = maps["before"].extent()
    _item(layout, "title").setText(title or f"Changes between {date_before} and {date_after}")
    _item(layout, "subtitle").setText(
        f"{shown} change{'' if shown == 1 else 's'} · {shown_box.width():,.0f} × {shown_box.height():,.0f} m shown · "
        f"scale 1:{maps['before'].scale():,.0f} · {changes.crs().authid() or changes.crs().description()} · "
        "numbers refer to the table")
    _legend(layout, [layer for layer in (changes, aoi) if layer is not None])
    _caption_table(layout, changes, maps["after"], shown)
    _item(layout, "footer").setText(footer_text(provenance, counts))
    return layout


_EXPORT_ERRORS = {
    QgsLayoutExporter.ExportResult.Canceled: "the export was cancelled",
    QgsLayoutExporter.ExportResult.FileError: "the file cannot be written (folder missing, read-only or file open?)",
    QgsLayoutExporter.ExportResult.PrintError: "the PDF printer failed",
    QgsLayoutExporter.ExportResult.MemoryError: "not enough memory for the image at this resolution: lower the dpi",
    QgsLayoutExporter.ExportResult.IteratorError: "the layout iterator failed",
    QgsLayoutExporter.ExportResult.SvgLayerError: "a layer could not be drawn",
}


def _check(result: QgsLayoutExporter.ExportResult, exporter: QgsLayoutExporter, path: Path) -> Path:
    if result != QgsLayoutExporter.ExportResult.Success:
        reason = _EXPORT_ERRORS.get(result, f"exporter result {result}")
        raise ExportError(f"cannot write the map {exporter.errorFile() or path}: {reason}")
    if not path.is_file() or path.stat().st_size == 0:
        raise ExportError(f"the map {path} was not written (empty or missing after the export)")
    return path


def export_map(gpkg_path: Path, before: QgsRasterLayer | None, after: QgsRasterLayer | None,
               out_pdf: Path | None, out_png: Path | None, title: str | None = None,
               extent: QgsRectangle | None = None, extent_crs: QgsCoordinateReferenceSystem | None = None,
               dpi: int = 150) -> list[Path]:
    """The annotated A4 map of a result as PDF and/or PNG; returns the paths written.

    Before and after side by side with the numbered changes, the caption table, legend, scale bar,
    north arrow, title with the dates and a provenance footer. ``extent`` (in ``extent_crs``, else
    the result's CRS) limits the maps to a view; by default the whole analysed area. Everything
    happens in a private QgsProject: the user's project is never touched. Main thread (a layout is a
    QGraphicsScene): Processing algorithms calling this need FlagNoThreading.
    """
    gpkg = Path(gpkg_path)
    if not gpkg.is_file():
        raise FileNotFoundError(f"the result {gpkg} does not exist")
    outputs = [Path(p) for p in (out_pdf, out_png) if p is not None]
    if not outputs:
        raise ValueError("give a PDF or a PNG path (or both) for the map")
    for path in outputs:
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    if dpi < 36 or dpi > 1200:
        raise ValueError(f"dpi {dpi} is out of range (36-1200)")
    project = QgsProject()
    layout = None
    try:
        layout = build_layout(project, gpkg, before, after, title, extent, extent_crs)
        exporter = QgsLayoutExporter(layout)
        written = []
        if out_pdf is not None:
            settings = QgsLayoutExporter.PdfExportSettings()
            settings.dpi = dpi
            settings.rasterizeWholeImage = False
            written.append(_check(exporter.exportToPdf(str(out_pdf), settings), exporter, Path(out_pdf)))
        if out_png is not None:
            image = QgsLayoutExporter.ImageExportSettings()
            image.dpi = dpi
            image.exportMetadata = False  # GDAL cannot update a PNG in place: it would only log an error
            written.append(_check(exporter.exportToImage(str(out_png), image), exporter, Path(out_png)))
        return written
    finally:
        del layout  # before its project
        project.clear()
