"""AOI tools and sources give polygons in the project CRS, from mouse events and from layers in other CRSs."""

from __future__ import annotations

import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QKeyEvent

from hisem_qgis.aoi import (
    AoiError,
    PolygonAoiTool,
    RectangleAoiTool,
    aoi_from_canvas,
    aoi_from_layer_extent,
    aoi_from_selection,
)

PROJECT_CRS = QgsCoordinateReferenceSystem("EPSG:32633")
WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
EXTENT = QgsRectangle(500000, 4999000, 501200, 4999800)


@pytest.fixture()
def canvas(qgis_canvas):
    qgis_canvas.setDestinationCrs(PROJECT_CRS)
    qgis_canvas.setRotation(0)
    qgis_canvas.setExtent(EXTENT)
    # Offscreen the canvas is never shown, so its map settings keep their first size: tests map pixels
    # with the canvas's own transform instead of assuming a scale.
    assert qgis_canvas.mapSettings().mapUnitsPerPixel() > 0
    return qgis_canvas


def context():
    return QgsProject.instance().transformContext()


def at(canvas, x: int, y: int) -> QgsPointXY:
    """Map coordinates of canvas pixel (x, y)."""
    return canvas.getCoordinateTransform().toMapCoordinates(x, y)


def mouse(canvas, kind: QEvent.Type, x: int, y: int, button=Qt.MouseButton.LeftButton) -> QgsMapMouseEvent:
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else button
    return QgsMapMouseEvent(canvas, kind, QPoint(x, y), buttons, buttons, Qt.KeyboardModifier.NoModifier)


def press(tool, canvas, x, y, button=Qt.MouseButton.LeftButton) -> None:
    tool.canvasPressEvent(mouse(canvas, QEvent.Type.MouseButtonPress, x, y, button))
    tool.canvasReleaseEvent(mouse(canvas, QEvent.Type.MouseButtonRelease, x, y, button))


def test_rectangle_tool(canvas) -> None:
    tool = RectangleAoiTool(canvas)
    got: list[QgsGeometry] = []
    tool.aoiDrawn.connect(got.append)
    tool.canvasPressEvent(mouse(canvas, QEvent.Type.MouseButtonPress, 100, 50))
    tool.canvasMoveEvent(mouse(canvas, QEvent.Type.MouseMove, 250, 200))
    assert tool._band.numberOfVertices() >= 4  # the rubber band follows the drag
    tool.canvasReleaseEvent(mouse(canvas, QEvent.Type.MouseButtonRelease, 400, 300))
    assert len(got) == 1
    geom = got[0]
    assert geom.type() == QgsWkbTypes.GeometryType.PolygonGeometry
    expected = QgsRectangle(at(canvas, 100, 50), at(canvas, 400, 300))
    assert geom.boundingBox().toString(3) == expected.toString(3)
    # 300 x 250 px, in the project's metres.
    upp = canvas.mapSettings().mapUnitsPerPixel()
    assert geom.area() == pytest.approx(300 * 250 * upp * upp, rel=1e-6)
    assert tool._band.numberOfVertices() == 0
    # A click without a drag, or a drag cancelled with Esc, draws nothing.
    press(tool, canvas, 10, 10)
    tool.canvasPressEvent(mouse(canvas, QEvent.Type.MouseButtonPress, 10, 10))
    tool.canvasMoveEvent(mouse(canvas, QEvent.Type.MouseMove, 50, 50))
    tool.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier))
    tool.canvasReleaseEvent(mouse(canvas, QEvent.Type.MouseButtonRelease, 50, 50))
    assert len(got) == 1


def test_polygon_tool_closes_on_right_click_and_double_click(canvas) -> None:
    tool = PolygonAoiTool(canvas)
    got: list[QgsGeometry] = []
    tool.aoiDrawn.connect(got.append)
    for x, y in ((100, 100), (300, 100), (300, 300)):
        press(tool, canvas, x, y)
    tool.canvasMoveEvent(mouse(canvas, QEvent.Type.MouseMove, 120, 280))
    assert len(tool.vertices) == 3
    press(tool, canvas, 200, 200, Qt.MouseButton.RightButton)
    assert len(got) == 1 and tool.vertices == []
    expected = QgsGeometry.fromPolygonXY([[at(canvas, 100, 100), at(canvas, 300, 100), at(canvas, 300, 300),
                                           at(canvas, 100, 100)]])
    assert got[0].equals(expected) or got[0].symDifference(expected).area() < 1e-6
    upp = canvas.mapSettings().mapUnitsPerPixel()
    assert got[0].area() == pytest.approx(0.5 * 200 * 200 * upp * upp, rel=1e-6)

    # Double click: its first press adds the last vertex, the double click closes.
    for x, y in ((10, 10), (110, 10), (110, 110)):
        press(tool, canvas, x, y)
    press(tool, canvas, 10, 110)
    tool.canvasDoubleClickEvent(mouse(canvas, QEvent.Type.MouseButtonDblClick, 10, 110))
    assert len(got) == 2
    assert got[1].area() == pytest.approx(100 * 100 * upp * upp, rel=1e-6)
    assert got[1].boundingBox().toString(3) == QgsRectangle(at(canvas, 10, 10), at(canvas, 110, 110)).toString(3)


def test_polygon_tool_escape_and_too_few_vertices(canvas) -> None:
    tool = PolygonAoiTool(canvas)
    got: list[QgsGeometry] = []
    tool.aoiDrawn.connect(got.append)
    for x, y in ((100, 100), (300, 100), (300, 300)):
        press(tool, canvas, x, y)
    tool.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier))
    assert tool.vertices == []
    press(tool, canvas, 200, 200, Qt.MouseButton.RightButton)
    for x, y in ((100, 100), (300, 100)):
        press(tool, canvas, x, y)
    press(tool, canvas, 200, 200, Qt.MouseButton.RightButton)  # two vertices are not an area
    assert got == []


def test_aoi_from_canvas(canvas) -> None:
    geom = aoi_from_canvas(canvas)
    assert geom.boundingBox().toString(3) == canvas.extent().toString(3)
    assert geom.area() == pytest.approx(canvas.extent().area(), rel=1e-6)
    assert geom.boundingBox().buffered(1e-6).contains(EXTENT)
    # A rotated map gives the rotated visible area, still in the project CRS.
    canvas.setRotation(30)
    rotated = aoi_from_canvas(canvas)
    assert not rotated.isGeosEqual(geom) and rotated.area() == pytest.approx(geom.area(), rel=1e-6)
    canvas.setRotation(0)


def _wgs84_polygons() -> QgsVectorLayer:
    """Two squares and a third one far away, in EPSG:4326 (not the project's CRS)."""
    layer = QgsVectorLayer("Polygon?crs=EPSG:4326&field=name:string", "fields", "memory")
    to_wgs84 = QgsCoordinateTransform(PROJECT_CRS, WGS84, context())
    features = []
    for name, rect in (("a", QgsRectangle(500000, 4999000, 500100, 4999100)),
                       ("b", QgsRectangle(500050, 4999000, 500150, 4999100)),
                       ("c", QgsRectangle(510000, 4999000, 510100, 4999100))):
        geom = QgsGeometry.fromRect(rect)
        geom.transform(to_wgs84)
        feature = QgsFeature(layer.fields())
        feature.setAttributes([name])
        feature.setGeometry(geom)
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    layer.updateExtents()
    return layer


def test_aoi_from_selection_unions_selected_polygons(canvas) -> None:
    layer = _wgs84_polygons()
    with pytest.raises(AoiError, match="no feature of 'fields' is selected"):
        aoi_from_selection(layer, PROJECT_CRS, context())
    ids = [f.id() for f in layer.getFeatures() if f["name"] in ("a", "b")]
    layer.selectByIds(ids)
    geom = aoi_from_selection(layer, PROJECT_CRS, context())
    # The union of two overlapping 100 m squares, back in UTM metres.
    assert geom.area() == pytest.approx(150 * 100, rel=1e-3)
    box = geom.boundingBox()
    assert box.xMinimum() == pytest.approx(500000, abs=0.01) and box.xMaximum() == pytest.approx(500150, abs=0.01)
    assert box.yMinimum() == pytest.approx(4999000, abs=0.01) and box.yMaximum() == pytest.approx(4999100, abs=0.01)


def test_aoi_from_selection_refuses_non_polygons() -> None:
    points = QgsVectorLayer("Point?crs=EPSG:4326", "wells", "memory")
    with pytest.raises(AoiError, match="'wells' is not a polygon layer"):
        aoi_from_selection(points, PROJECT_CRS, context())


def test_aoi_from_layer_extent_is_reprojected() -> None:
    layer = _wgs84_polygons()
    geom = aoi_from_layer_extent(layer, PROJECT_CRS, context())
    box = geom.boundingBox()
    # The lon/lat extent of the three squares, in UTM: it holds all of them (a bit more at the corners).
    assert box.contains(QgsRectangle(500000, 4999000, 510100, 4999100))
    assert box.width() == pytest.approx(10100, rel=0.01) and box.height() < 200
    # The same CRS needs no transform: the extent comes back exactly.
    same = QgsVectorLayer("Polygon?crs=EPSG:32633", "utm", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(1, 2, 3, 4)))
    same.dataProvider().addFeatures([feature])
    same.updateExtents()
    assert aoi_from_layer_extent(same, PROJECT_CRS, context()).boundingBox() == QgsRectangle(1, 2, 3, 4)
