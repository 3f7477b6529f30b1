"""The area of interest: two map tools (rectangle, polygon) and AOIs from the canvas, a layer or a selection.

Every AOI is a polygon QgsGeometry in the project CRS (the canvas's destination CRS), so the rest of
the plugin has one place to ask the CRS of an AOI from; pairing reprojects it once, densified.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsGeometry,
    QgsMapLayer,
    QgsPointXY,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool, QgsMapToolEmitPoint, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QKeyEvent

_POLYGON = QgsWkbTypes.GeometryType.PolygonGeometry
# Points added per edge of a rectangle before it is reprojected (its edges curve in another CRS).
_DENSIFY = 32


class AoiError(ValueError):
    """No usable area: nothing selected, not polygons, or a geometry that cannot be reprojected."""


def _rubber_band(canvas: QgsMapCanvas) -> QgsRubberBand:
    band = QgsRubberBand(canvas, _POLYGON)
    band.setStrokeColor(QColor(255, 64, 0, 220))
    band.setFillColor(QColor(255, 64, 0, 40))
    band.setWidth(2)
    return band


class RectangleAoiTool(QgsMapToolEmitPoint):
    """Press, drag, release: emits the rectangle (canvas CRS = project CRS) as a polygon."""

    aoiDrawn = pyqtSignal(QgsGeometry)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self._band = _rubber_band(canvas)
        self._start: QgsPointXY | None = None

    def canvasPressEvent(self, e: QgsMapMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._start = QgsPointXY(e.mapPoint())
            self._band.reset(_POLYGON)

    def canvasMoveEvent(self, e: QgsMapMouseEvent) -> None:
        if self._start is not None:
            self._band.setToGeometry(QgsGeometry.fromRect(QgsRectangle(self._start, e.mapPoint())), None)

    def canvasReleaseEvent(self, e: QgsMapMouseEvent) -> None:
        if self._start is None or e.button() != Qt.MouseButton.LeftButton:
            return
        rect = QgsRectangle(self._start, e.mapPoint())
        self._cancel()
        if rect.width() > 0 and rect.height() > 0:  # a click without a drag is not an area
            self.aoiDrawn.emit(QgsGeometry.fromRect(rect))

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Escape:
            self._cancel()
            e.accept()

    def deactivate(self) -> None:
        self._cancel()
        super().deactivate()

    def _cancel(self) -> None:
        self._start = None
        self._band.reset(_POLYGON)


class PolygonAoiTool(QgsMapTool):
    """Left click adds a vertex; right click or double click closes; Backspace undoes; Esc cancels."""

    aoiDrawn = pyqtSignal(QgsGeometry)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self._band = _rubber_band(canvas)
        self._points: list[QgsPointXY] = []

    @property
    def vertices(self) -> list[QgsPointXY]:
        return list(self._points)

    def canvasPressEvent(self, e: QgsMapMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            point = QgsPointXY(e.mapPoint())
            if not self._points or point != self._points[-1]:
                self._points.append(point)
            self._show(point)
        elif e.button() == Qt.MouseButton.RightButton:
            self._finish()

    def canvasDoubleClickEvent(self, e: QgsMapMouseEvent) -> None:
        # The double click's first press already added its vertex.
        if e.button() == Qt.MouseButton.LeftButton:
            self._finish()

    def canvasMoveEvent(self, e: QgsMapMouseEvent) -> None:
        if self._points:
            self._show(QgsPointXY(e.mapPoint()))

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() == Qt.Key.Key_Escape:
            self._cancel()
            e.accept()
        elif e.key() == Qt.Key.Key_Backspace and self._points:
            self._points.pop()
            self._show(None)
            e.accept()

    def deactivate(self) -> None:
        self._cancel()
        super().deactivate()

    def _show(self, moving: QgsPointXY | None) -> None:
        points = self._points + ([moving] if moving is not None and moving != self._points[-1] else [])
        self._band.reset(_POLYGON)
        for i, p in enumerate(points):
            self._band.addPoint(p, i == len(points) - 1)

    def _finish(self) -> None:
        points = self._points
        self._cancel()
        if len(points) < 3:
            return  # fewer than three vertices make no area: nothing to emit
        geom = QgsGeometry.fromPolygonXY([[*points, points[0]]])
        if not geom.isGeosValid():
            geom = geom.makeValid()  # a figure-of-eight drawing becomes a multipolygon
        if not geom.isEmpty() and geom.area() > 0:
            self.aoiDrawn.emit(geom)

    def _cancel(self) -> None:
        self._points = []
        self._band.reset(_POLYGON)


def aoi_from_canvas(canvas: QgsMapCanvas) -> QgsGeometry:
    """What the canvas shows, in its CRS; its visible polygon, so a rotated map gives a rotated AOI."""
    corners = [QgsPointXY(p) for p in canvas.mapSettings().visiblePolygon()]
    if len(corners) < 3:
        raise AoiError("the map canvas shows no area yet")
    # An open QPolygonF would become a line: close the ring.
    geom = QgsGeometry.fromPolygonXY([[*corners, corners[0]]])
    if geom.isEmpty() or geom.area() <= 0:
        raise AoiError("the map canvas shows no area yet")
    return geom


def _to_project(geom: QgsGeometry, src: QgsCoordinateReferenceSystem, project_crs: QgsCoordinateReferenceSystem,
                context: QgsCoordinateTransformContext, what: str) -> QgsGeometry:
    if src == project_crs:
        return geom
    if not src.isValid():
        raise AoiError(f"{what} has no CRS: set the layer's CRS first")
    try:
        if geom.transform(QgsCoordinateTransform(src, project_crs, context)) != Qgis.GeometryOperationResult.Success:
            raise AoiError(f"cannot transform {what} to the project CRS {project_crs.authid()}")
    except QgsCsException as exc:
        raise AoiError(f"cannot transform {what} to the project CRS {project_crs.authid()}: {exc}") from exc
    return geom


def aoi_from_layer_extent(layer: QgsMapLayer, project_crs: QgsCoordinateReferenceSystem,
                          transform_context: QgsCoordinateTransformContext) -> QgsGeometry:
    """The layer's extent as a polygon in the project CRS (edges densified: they curve when reprojected)."""
    extent = layer.extent()
    if extent.isNull() or extent.isEmpty():
        raise AoiError(f"layer {layer.name()!r} has an empty extent")
    geom = QgsGeometry.fromRect(extent)
    if layer.crs() != project_crs:
        geom = geom.densifyByCount(_DENSIFY)
    return _to_project(geom, layer.crs(), project_crs, transform_context, f"the extent of {layer.name()!r}")


def aoi_from_selection(layer: QgsVectorLayer, project_crs: QgsCoordinateReferenceSystem,
                       transform_context: QgsCoordinateTransformContext) -> QgsGeometry:
    """The union of the selected polygons of ``layer``, in the project CRS."""
    if not isinstance(layer, QgsVectorLayer) or layer.geometryType() != _POLYGON:
        raise AoiError(f"layer {layer.name()!r} is not a polygon layer: choose a layer of polygons")
    geoms = [f.geometry() for f in layer.getSelectedFeatures() if f.hasGeometry()]
    if not geoms:
        raise AoiError(f"no feature of {layer.name()!r} is selected: select the polygons of the area first")
    union = QgsGeometry.unaryUnion([g if g.isGeosValid() else g.makeValid() for g in geoms])
    if union.isNull() or union.isEmpty() or union.area() <= 0:
        raise AoiError(f"the selected features of {layer.name()!r} have no area")
    return _to_project(union, layer.crs(), project_crs, transform_context,
                       f"the selection of {layer.name()!r}")
