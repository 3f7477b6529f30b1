"""The review: accept / reject / correct captions, stored in the GeoPackage at once; rejected changes look rejected."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from osgeo import ogr
from qgis.core import (
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize, Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QInputDialog
from test_map_export import X0, Y1, make_geotiff, scene_geojson

from hisem_qgis.controller import DockController
from hisem_qgis.dock import HisemDock
from hisem_qgis.layers import add_result_layers, write_result_gpkg
from hisem_qgis.review import ACCEPTED, REJECTED, ReviewError, ReviewPanel, review_rows, set_review
from hisem_qgis.workflow import CaptionOutcome

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture()
def gpkg(tmp_path: Path) -> Path:
    result = scene_geojson()
    result["features"][-1]["properties"]["area_m2"] = 1000.0  # sorts before 400 as text, after it as a number
    return write_result_gpkg(result, tmp_path / "changes.gpkg")


@pytest.fixture()
def changes(gpkg: Path, qgis_new_project) -> Iterator[QgsVectorLayer]:
    layer = QgsVectorLayer(f"{gpkg}|layername=changes", "changes", "ogr")
    assert layer.isValid()
    # Owned by the project, as in QGIS: a layer left to Python outlives QGIS in pytest and crashes the exit.
    QgsProject.instance().addMapLayer(layer)
    yield layer
    QgsProject.instance().removeMapLayer(layer.id())


def fid_of(layer: QgsVectorLayer, number: int) -> int:
    return next(f.id() for f in layer.getFeatures() if f["change_id"] == number)


def stored(gpkg: Path) -> dict[int, tuple[str | None, str | None, str | None]]:
    """change_id -> (review_status, caption_reviewed, reviewed_at), read back with OGR (not through QGIS)."""
    ds = ogr.Open(str(gpkg))
    rows = {f.GetField("change_id"): (f.GetField("review_status"), f.GetField("caption_reviewed"),
                                      f.GetField("reviewed_at")) for f in ds.GetLayerByName("changes")}
    ds = None
    return rows


def test_new_results_are_pending(gpkg: Path) -> None:
    assert set(stored(gpkg).values()) == {("pending", None, None)}


def test_review_edits_persist_in_the_gpkg(gpkg: Path, changes: QgsVectorLayer) -> None:
    set_review(changes, [fid_of(changes, 1)], ACCEPTED)
    set_review(changes, [fid_of(changes, 2), fid_of(changes, 4)], REJECTED)
    set_review(changes, [fid_of(changes, 3)], ACCEPTED, caption="  a road is built across the field ")
    assert not changes.isEditable() and not changes.isModified()  # straight to the file, no edit session
    rows = stored(gpkg)
    assert rows[1][:2] == (ACCEPTED, "two buildings are built along the road")  # the accepted caption is frozen
    assert rows[2][:2] == rows[4][:2] == (REJECTED, None)
    assert rows[3][:2] == (ACCEPTED, "a road is built across the field")
    assert rows[5] == ("pending", None, None)
    assert all(ISO_UTC.match(rows[n][2]) for n in (1, 2, 3, 4))
    # A fresh layer sees the same; the map's rows prefer the reviewed caption and leave out the rejected.
    fresh = QgsVectorLayer(f"{gpkg}|layername=changes", "again", "ogr")
    kept = review_rows(fresh, include_rejected=False)
    assert [(r.number, r.caption) for r in kept] == [(1, "two buildings are built along the road"),
                                                     (3, "a road is built across the field"),
                                                     (5, "a house is built in the corner")]
    # Back to pending clears the date, keeps the corrected caption.
    set_review(changes, [fid_of(changes, 3)], "pending")
    assert stored(gpkg)[3] == ("pending", "a road is built across the field", None)


def test_review_refuses_bad_edits(gpkg: Path, changes: QgsVectorLayer) -> None:
    before = stored(gpkg)
    with pytest.raises(ReviewError, match="unknown review status"):
        set_review(changes, [1], "maybe")
    with pytest.raises(ReviewError, match="caption is empty"):
        set_review(changes, [1], ACCEPTED, caption="   ")
    with pytest.raises(ReviewError, match="no feature 999"):
        set_review(changes, [1, 999], REJECTED)
    assert changes.startEditing()
    with pytest.raises(ReviewError, match="save or discard the edits"):
        set_review(changes, [1], REJECTED)
    changes.rollBack()
    assert stored(gpkg) == before


def _mean_colour(layer: QgsVectorLayer, number: int) -> QColor:
    """The mean colour the layer's style paints inside one change (its 20 m square, 2 m in from the edge)."""
    box = layer.getFeature(fid_of(layer, number)).geometry().boundingBox()
    inner = QgsRectangle(box.xMinimum() + 2, box.yMinimum() + 2, box.xMaximum() - 2, box.yMaximum() - 2)
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(inner)
    settings.setOutputSize(QSize(64, 64))
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setFlag(QgsMapSettings.Flag.DrawLabeling, False)
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    pixels = [QColor(image.pixel(x, y)) for x in range(64) for y in range(64)]
    return QColor(*(round(sum(getattr(p, c)() for p in pixels) / len(pixels)) for c in ("red", "green", "blue")))


def test_rejected_changes_are_drawn_differently(gpkg: Path, changes: QgsVectorLayer) -> None:
    # Changes 1 (0.95) and 5 (0.85) share a score class: only the review can make them look different.
    pending = _mean_colour(changes, 1)
    assert pending.hsvSaturation() > 60  # the score's red-orange fill
    set_review(changes, [fid_of(changes, 1)], REJECTED)
    rejected, other = _mean_colour(changes, 1), _mean_colour(changes, 5)
    assert rejected.hsvSaturation() < 20  # grey hatching on the white background
    assert other.hsvSaturation() > 60 and abs(other.hue() - pending.hue()) < 15


def test_review_panel(gpkg: Path, changes: QgsVectorLayer, qgis_iface, qgis_canvas, monkeypatch) -> None:
    panel = ReviewPanel(qgis_iface, changes, qgis_iface.mainWindow())  # parented: Qt deletes it before QGIS exits
    table = panel.table
    assert table.rowCount() == 5
    assert [table.item(r, 0).data(Qt.ItemDataRole.DisplayRole) for r in range(5)] == [1, 2, 3, 4, 5]
    table.sortItems(3, Qt.SortOrder.DescendingOrder)  # area: numbers, not text
    assert table.item(0, 0).data(Qt.ItemDataRole.DisplayRole) == 5
    # A click zooms to the change.
    qgis_canvas.setDestinationCrs(changes.crs())
    qgis_canvas.setExtent(QgsRectangle(X0 - 1000, Y1 - 1000, X0 + 1000, Y1 + 1000))
    row_of_3 = next(r for r in range(5) if table.item(r, 0).data(Qt.ItemDataRole.DisplayRole) == 3)
    table.cellClicked.emit(row_of_3, 1)
    change_box = changes.getFeature(fid_of(changes, 3)).geometry().boundingBox()
    view = qgis_canvas.extent()
    assert view.contains(change_box) and min(view.width(), view.height()) < 100  # from 2 km to the change
    # Accept, reject and edit act on the selected rows and reach the file.
    table.selectRow(row_of_3)
    panel.reject_button.click()
    assert stored(gpkg)[3][0] == REJECTED
    status = next(table.item(r, 4).text() for r in range(5) if table.item(r, 0).data(Qt.ItemDataRole.DisplayRole) == 3)
    assert status == REJECTED and "1 rejected" in panel.summary_label.text()
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("a cycle path crosses the field", True))
    panel.edit_button.click()
    assert stored(gpkg)[3][:2] == (ACCEPTED, "a cycle path crosses the field")
    caption = next(table.item(r, 1).text() for r in range(5) if table.item(r, 0).data(Qt.ItemDataRole.DisplayRole) == 3)
    assert caption == "a cycle path crosses the field"


def test_dock_review_and_export_buttons(gpkg: Path, tmp_path: Path, qgis_iface, qgis_new_project) -> None:
    project = QgsProject.instance()
    dock = HisemDock()
    controller = DockController(qgis_iface, dock, project)
    try:
        assert controller.review() is None and controller.export(tmp_path / "m.pdf", False) == []  # no result yet
        add_result_layers(gpkg, project, "HiSem", {})
        controller._succeeded(CaptionOutcome(gpkg, {}, 5, 16, 1.0))
        layers_before = sorted(project.mapLayers())
        dock.reviewRequested.emit()
        assert isinstance(controller.review_panel, ReviewPanel)
        assert controller.review_panel.layer.source().startswith(str(gpkg))
        raster = QgsRasterLayer(str(make_geotiff(tmp_path / "before.tif", False)), "before 2019")
        project.addMapLayer(raster)
        dock.before_combo.setLayer(raster)
        written = controller.export(tmp_path / "map", False)  # the suffix is added
        assert [p.name for p in written] == ["map.pdf", "map.png"] and all(p.stat().st_size > 0 for p in written)
        assert sorted(project.mapLayers()) == sorted([*layers_before, raster.id()])
    finally:
        controller.unload()
        project.clear()  # the next tests start from an empty project
