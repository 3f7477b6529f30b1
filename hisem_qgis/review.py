"""The analyst's review of the changes: accept, reject or correct each caption, stored in the GeoPackage.

The logic (``set_review``, ``review_rows``) is plain functions on a layer, so it is tested without
dialogs; ``ReviewPanel`` only shows the rows and calls them. Edits go straight to the GeoPackage
through the data provider: no edit session is left open, and a crash after a click loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qgis.core import (
    Qgis,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsField,
    QgsGeometry,
    QgsProject,
    QgsVectorLayer,
)
from qgis.gui import QgisInterface
from qgis.PyQt.QtCore import QSignalBlocker, Qt, QVariant
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .layers import REVIEW_PENDING

ACCEPTED, REJECTED, PENDING = "accepted", "rejected", REVIEW_PENDING
REVIEW_STATUSES = (PENDING, ACCEPTED, REJECTED)
REVIEW_FIELDS = ("review_status", "caption_reviewed", "reviewed_at")
# An expression that keeps what the analyst did not reject (results written before the review fields too).
NOT_REJECTED = f"\"review_status\" IS NULL OR \"review_status\" <> '{REJECTED}'"
COLUMNS = ("No.", "Caption", "Score", "Area (m²)", "Status")


class ReviewError(ValueError):
    """A review edit that cannot be applied (unknown status or feature, layer in edit mode, write refused)."""


@dataclass(frozen=True)
class ReviewRow:
    """One change as the review table and the map's caption table show it."""

    fid: int
    number: int
    caption: str  # the reviewed caption if there is one, else the model's
    score: float | None
    area_m2: float | None
    status: str


def _value(feature: Any, name: str) -> Any:
    """A field's value, None for NULL or a missing field (results written before the review fields)."""
    index = feature.fields().indexOf(name)
    if index < 0:
        return None
    value = feature.attribute(index)
    return None if value is None or (isinstance(value, QVariant) and value.isNull()) else value


def shown_caption(feature: Any) -> str:
    """The analyst's caption when they edited or accepted one, else the model's."""
    return str(_value(feature, "caption_reviewed") or _value(feature, "caption") or "")


def review_rows(layer: QgsVectorLayer, include_rejected: bool = True) -> list[ReviewRow]:
    """The changes ordered by number; ``include_rejected=False`` for what a map should show."""
    rows = []
    for feature in layer.getFeatures():
        status = _value(feature, "review_status") or PENDING
        if status == REJECTED and not include_rejected:
            continue
        number = _value(feature, "change_id")
        score, area = _value(feature, "score"), _value(feature, "area_m2")
        rows.append(ReviewRow(feature.id(), int(number if number is not None else feature.id()), shown_caption(feature),
                              None if score is None else float(score), None if area is None else float(area), status))
    return sorted(rows, key=lambda row: (row.number, row.fid))


def ensure_review_fields(layer: QgsVectorLayer) -> None:
    """Add the review fields to a result written before they existed, so it can be reviewed too."""
    missing = [QgsField(name, QVariant.Type.String) for name in REVIEW_FIELDS if layer.fields().indexOf(name) < 0]
    if not missing:
        return
    if not layer.dataProvider().addAttributes(missing):
        raise ReviewError(f"cannot add the review fields to {layer.name()!r}: "
                          f"{'; '.join(layer.dataProvider().errors()) or 'the file is read-only?'}")
    layer.updateFields()


def set_review(layer: QgsVectorLayer, fids: Iterable[int], status: str, caption: str | None = None) -> None:
    """Record a review of the features ``fids`` in the layer's file, then repaint the layer.

    ``accepted`` freezes the shown caption into ``caption_reviewed`` (so a later model run cannot
    change what the analyst approved); ``caption`` sets it explicitly; ``pending`` clears the date.
    """
    if status not in REVIEW_STATUSES:
        raise ReviewError(f"unknown review status {status!r}: use one of {', '.join(REVIEW_STATUSES)}")
    if caption is not None and not caption.strip():
        raise ReviewError("the caption is empty: type the caption, or reject the change")
    if layer.isEditable():
        raise ReviewError(f"save or discard the edits of {layer.name()!r} first: the review writes to its file")
    wanted = sorted({int(fid) for fid in fids})
    if not wanted:
        return
    ensure_review_fields(layer)
    features = {f.id(): f for f in layer.getFeatures(QgsFeatureRequest().setFilterFids(wanted))}
    unknown = [fid for fid in wanted if fid not in features]
    if unknown:
        raise ReviewError(f"{layer.name()!r} has no feature {unknown[0]} (was the layer reloaded?)")
    index = {name: layer.fields().indexOf(name) for name in REVIEW_FIELDS}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    changes: dict[int, dict[int, Any]] = {}
    for fid, feature in features.items():
        values: dict[int, Any] = {index["review_status"]: status,
                                  index["reviewed_at"]: None if status == PENDING else now}
        if caption is not None:
            values[index["caption_reviewed"]] = caption.strip()
        elif status == ACCEPTED:
            values[index["caption_reviewed"]] = shown_caption(feature) or None
        changes[fid] = values
    if not layer.dataProvider().changeAttributeValues(changes):
        raise ReviewError(f"cannot store the review in {layer.name()!r}: "
                          f"{'; '.join(layer.dataProvider().errors()) or 'the file is read-only?'}")
    layer.triggerRepaint()


class ReviewPanel(QDockWidget):
    """The changes of one result as a sortable table; a click shows the change on the map."""

    def __init__(self, iface: QgisInterface, changes_layer: QgsVectorLayer, parent: QWidget | None = None) -> None:
        super().__init__(f"HiSem review · {changes_layer.name()}", parent)
        self.setObjectName("HisemReviewPanel")
        self.iface, self.layer = iface, changes_layer
        body = QWidget(self)
        column = QVBoxLayout(body)
        self.table = QTableWidget(0, len(COLUMNS), body)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # by number until the analyst sorts otherwise
        self.table.cellClicked.connect(lambda row, _column: self.show_change(self._fid(row)))
        column.addWidget(self.table)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept", body)
        self.reject_button = QPushButton("Reject", body)
        self.edit_button = QPushButton("Edit caption…", body)
        self.accept_button.clicked.connect(lambda: self.review_selected(ACCEPTED))
        self.reject_button.clicked.connect(lambda: self.review_selected(REJECTED))
        self.edit_button.clicked.connect(self.edit_caption)
        for button in (self.accept_button, self.reject_button, self.edit_button):
            row.addWidget(button)
        column.addLayout(row)
        self.summary_label = QLabel("", body)
        column.addWidget(self.summary_label)
        self.setWidget(body)
        changes_layer.willBeDeleted.connect(self.close)
        self.refresh()

    # -- table ------------------------------------------------------------------------------------

    @staticmethod
    def _item(value: Any, text: str | None = None) -> QTableWidgetItem:
        item = QTableWidgetItem()
        item.setData(Qt.ItemDataRole.DisplayRole, value if text is None else text)  # numbers sort as numbers
        return item

    def refresh(self) -> None:
        """Reload the rows from the file, keeping the selection."""
        selected = set(self.selected_fids())
        rows = review_rows(self.layer)
        with QSignalBlocker(self.table):
            self.table.setSortingEnabled(False)
            self.table.setRowCount(len(rows))
            for i, row in enumerate(rows):
                number = self._item(row.number)
                number.setData(Qt.ItemDataRole.UserRole, row.fid)
                status = self._item(row.status)
                if row.status == REJECTED:
                    status.setForeground(QColor(130, 130, 130))
                elif row.status == ACCEPTED:
                    status.setForeground(QColor(30, 130, 60))
                items = (number, self._item(row.caption),
                         self._item(None if row.score is None else round(row.score, 2)),
                         self._item(None if row.area_m2 is None else round(row.area_m2, 1)), status)
                for j, item in enumerate(items):
                    self.table.setItem(i, j, item)
            self.table.setSortingEnabled(True)
            self.table.clearSelection()
            for i in range(self.table.rowCount()):
                if self._fid(i) in selected:
                    self.table.selectRow(i)
        counts = {status: sum(1 for r in rows if r.status == status) for status in REVIEW_STATUSES}
        self.summary_label.setText(" · ".join(f"{n} {status}" for status, n in counts.items()))

    def _fid(self, row: int) -> int:
        return int(self.table.item(row, 0).data(Qt.ItemDataRole.UserRole))

    def selected_fids(self) -> list[int]:
        return sorted({self._fid(index.row()) for index in self.table.selectionModel().selectedRows()})

    # -- actions ----------------------------------------------------------------------------------

    def show_change(self, fid: int) -> None:
        """Zoom the canvas to the change (with some context around it) and flash it."""
        feature = self.layer.getFeature(fid)
        if not feature.hasGeometry():
            return
        canvas = self.iface.mapCanvas()
        geometry = QgsGeometry(feature.geometry())
        transform = QgsCoordinateTransform(self.layer.crs(), canvas.mapSettings().destinationCrs(),
                                           QgsProject.instance().transformContext())
        box = transform.transformBoundingBox(geometry.boundingBox())
        box.scale(3.0)  # the neighbourhood, not only the polygon
        canvas.setExtent(box)
        canvas.refresh()
        canvas.flashGeometries([geometry], self.layer.crs())

    def review_selected(self, status: str, caption: str | None = None) -> None:
        fids = self.selected_fids()
        if not fids:
            self._message("select one or more changes in the table first", Qgis.MessageLevel.Info)
            return
        try:
            set_review(self.layer, fids, status, caption)
        except ReviewError as exc:
            self._message(str(exc), Qgis.MessageLevel.Warning)
        self.refresh()

    def edit_caption(self) -> None:
        """The corrected caption, for all the selected changes; editing a caption accepts the change."""
        fids = self.selected_fids()
        if not fids:
            self._message("select the change whose caption you want to correct", Qgis.MessageLevel.Info)
            return
        current = shown_caption(self.layer.getFeature(fids[0]))
        text, ok = QInputDialog.getText(self, "Edit caption", f"Caption of {len(fids)} change(s):",
                                        QLineEdit.EchoMode.Normal, current)
        if ok:
            self.review_selected(ACCEPTED, text)

    def _message(self, text: str, level: Qgis.MessageLevel) -> None:
        self.iface.messageBar().pushMessage("HiSem review", text, level, 6)
