"""Connects the dock to the AOI tools, the backend and the caption task (main thread only).

The dock holds widgets; this holds the state of a session (the AOI, the running task) and turns
the dock's signals into actions. Errors go to QGIS's message bar with the backend's ``detail``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsGeometry,
    QgsProject,
    QgsProviderRegistry,
    QgsTask,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgisInterface, QgsRubberBand
from qgis.PyQt.QtCore import QObject, Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QApplication, QFileDialog, QMessageBox

from . import aoi as aoi_tools
from .backend import BackendClient, BackendError, LocalBackend
from .diagnostics import diagnostics_report
from .dock import AOI_CANVAS, AOI_LAYER, AOI_POLYGON, AOI_RECTANGLE, AOI_SELECTION, HisemDock
from .export import ExportError, export_map
from .pairing import PairingError, estimate
from .review import ReviewPanel
from .settings import PluginSettings
from .task import CaptionTask
from .workflow import CaptionOutcome, CaptionRequest, LayerSource

TITLE = "HiSem"


def default_output(project: QgsProject, settings: PluginSettings) -> Path:
    """Next to the project when it is saved, else the last output folder, else the home folder."""
    folder = Path(project.homePath() or settings.output_dir or Path.home())
    return folder / f"hisem-changes-{time.strftime('%Y%m%d-%H%M%S')}.gpkg"


class DockController(QObject):
    """One per plugin instance; ``unload()`` undoes everything it changed in QGIS."""

    def __init__(self, iface: QgisInterface, dock: HisemDock, project: QgsProject | None = None) -> None:
        super().__init__(dock)
        self.iface, self.dock = iface, dock
        self.project = project or QgsProject.instance()
        self.settings = PluginSettings.load()
        dock.apply_settings(self.settings)
        self.aoi: QgsGeometry | None = None
        self.aoi_crs: QgsCoordinateReferenceSystem | None = None
        self.models: list[dict[str, Any]] = []
        self.task: CaptionTask | None = None  # cleared by the task's callbacks: never touched after it ends
        self.local_backend = LocalBackend()
        self._tool: Any = None
        self._aoi_band: QgsRubberBand | None = None
        self.last_gpkg: Path | None = None  # the last run's result: what Review and Export work on
        self.review_panel: ReviewPanel | None = None
        dock.aoiRequested.connect(self.request_aoi)
        dock.checkBackendRequested.connect(self.check_backend)
        dock.startBackendRequested.connect(self.start_backend)
        dock.runRequested.connect(self.run)
        dock.cancelRequested.connect(self.cancel)
        dock.diagnosticsRequested.connect(self.copy_diagnostics)
        dock.reviewRequested.connect(self.review)
        dock.exportRequested.connect(self.export)
        dock.before_combo.layerChanged.connect(lambda _layer: self.update_estimate())
        self._unloaded = False

    # -- messages ---------------------------------------------------------------------------------

    def _message(self, text: str, level: Qgis.MessageLevel = Qgis.MessageLevel.Warning, seconds: int = 8) -> None:
        self.iface.messageBar().pushMessage(TITLE, text, level, seconds)

    def _client(self, timeout_ms: int = 30000) -> BackendClient:
        return BackendClient(self.dock.backend_url(), self.dock.authcfg() or None, timeout_ms)

    # -- AOI --------------------------------------------------------------------------------------

    def request_aoi(self, mode: str) -> None:
        canvas = self.iface.mapCanvas()
        crs, context = self.project.crs(), self.project.transformContext()
        try:
            if mode in (AOI_RECTANGLE, AOI_POLYGON):
                tool_class = aoi_tools.RectangleAoiTool if mode == AOI_RECTANGLE else aoi_tools.PolygonAoiTool
                self._tool = tool_class(canvas)
                self._tool.aoiDrawn.connect(self.set_aoi)
                canvas.setMapTool(self._tool)
                self.dock.set_aoi_summary("draw the AOI on the map" + (" (right-click to close)"
                                                                        if mode == AOI_POLYGON else ""))
            elif mode == AOI_CANVAS:
                self.set_aoi(aoi_tools.aoi_from_canvas(canvas))
            elif mode == AOI_LAYER:
                layer = self.dock.aoi_layer()
                if layer is None:
                    raise aoi_tools.AoiError("choose the layer whose extent is the AOI")
                self.set_aoi(aoi_tools.aoi_from_layer_extent(layer, crs, context))
            elif mode == AOI_SELECTION:
                layer = self.dock.aoi_polygon_layer()
                if layer is None:
                    raise aoi_tools.AoiError("choose a polygon layer and select the AOI's features in it")
                self.set_aoi(aoi_tools.aoi_from_selection(layer, crs, context))
        except aoi_tools.AoiError as exc:
            self._message(str(exc))

    def set_aoi(self, geometry: QgsGeometry) -> None:
        """Keep the AOI (project CRS), show it on the map and estimate the run."""
        self.aoi, self.aoi_crs = QgsGeometry(geometry), self.project.crs()
        canvas = self.iface.mapCanvas()
        if self._tool is not None and canvas.mapTool() is self._tool:
            canvas.unsetMapTool(self._tool)
        if self._aoi_band is None:
            self._aoi_band = QgsRubberBand(canvas, QgsWkbTypes.GeometryType.PolygonGeometry)
            self._aoi_band.setColor(QColor(255, 140, 0, 200))
            self._aoi_band.setFillColor(QColor(255, 140, 0, 30))
            self._aoi_band.setWidth(2)
        self._aoi_band.setToGeometry(self.aoi, self.aoi_crs)
        self.update_estimate()

    def _model(self) -> dict[str, Any] | None:
        wanted = self.dock.model_id()
        return next((m for m in self.models if m["id"] == wanted), None)

    def _gsd_tile_overlap(self) -> tuple[float, int, int]:
        options, model = self.dock.options(), self._model() or {}
        gsd = float(options["gsd"] or model.get("gsd_m") or 0.5)
        tile = int(options["tile_size"] or model.get("tile_size") or 256)
        overlap = tile // 8 if options["overlap"] is None else int(options["overlap"])
        return gsd, tile, overlap

    def update_estimate(self) -> None:
        before = self.dock.before_layer()
        if self.aoi is None or before is None:
            self.dock.set_aoi_summary("no AOI yet" if self.aoi is None else self._aoi_text())
            self.dock.set_estimate(None, None)
            return
        self.dock.set_aoi_summary(self._aoi_text())
        gsd, tile, overlap = self._gsd_tile_overlap()
        try:
            area, tiles = estimate(before, self.aoi, self.aoi_crs, gsd, tile, overlap,
                                   self.project.transformContext())
        except PairingError as exc:
            self.dock.set_estimate(None, None)
            self.dock.set_aoi_summary(f"{self._aoi_text()}: {exc}")
            return
        self.dock.set_estimate(area, tiles)

    def _aoi_text(self) -> str:
        box = self.aoi.boundingBox() if self.aoi is not None else None
        return "" if box is None else f"AOI {box.width():.6g} × {box.height():.6g} ({self.aoi_crs.authid()})"

    # -- backend ----------------------------------------------------------------------------------

    def check_backend(self) -> bool:
        """Health and models in a few seconds at most; the dock shows what the backend says."""
        try:
            client = self._client(timeout_ms=5000)
            health = client.health()
            self.models = client.models()
        except BackendError as exc:
            self.dock.set_backend_status(exc.detail, False)
            return False
        self.dock.set_backend_status(
            f"hisem {health['version']} · {health.get('model') or 'no model'} · "
            f"{health['execution_provider'].replace('ExecutionProvider', '')} · {health['device']}", True)
        self.dock.set_models(self.models)
        self.update_estimate()
        return True

    def start_backend(self) -> None:
        """``hisem serve`` on the URL's port, started and waited for in a task (the model loads for seconds)."""
        port = urlparse(self.dock.backend_url()).port or 8765
        path = self.dock.hisem_path() or self.settings.hisem_path
        self.settings.hisem_path = path
        self.settings.save()
        backend = self.local_backend
        self.dock.set_backend_status(f"starting hisem serve on port {port}…", True)

        def start(task: QgsTask) -> dict[str, Any]:
            return backend.start(path, port, timeout_s=120)

        def done(exception: BaseException | None, health: dict[str, Any] | None = None) -> None:
            if exception is not None:
                detail = exception.detail if isinstance(exception, BackendError) else str(exception)
                self.dock.set_backend_status(detail, False)
                self._message(detail, Qgis.MessageLevel.Critical)
            else:
                self.check_backend()

        self._start_task = QgsTask.fromFunction("HiSem: start the local backend", start, on_finished=done)
        QgsApplication.taskManager().addTask(self._start_task)

    def copy_diagnostics(self) -> None:
        try:
            client = self._client(timeout_ms=5000)
        except BackendError:
            client = None
        QApplication.clipboard().setText(diagnostics_report(self.dock.backend_url(), client))
        self._message("diagnostics copied to the clipboard", Qgis.MessageLevel.Info, 4)

    # -- the run ----------------------------------------------------------------------------------

    def build_request(self) -> CaptionRequest:
        """What the dock says, checked; ValueError with what is missing."""
        before, after = self.dock.before_layer(), self.dock.after_layer()
        if before is None or after is None:
            raise ValueError("choose the before and the after raster layers")
        if before.id() == after.id():
            raise ValueError("the before and after layers are the same layer")
        if self.aoi is None:
            raise ValueError("set an area of interest first (draw it, or take an extent or a selection)")
        output = Path(self.dock.output_path()) if self.dock.output_path() else default_output(self.project,
                                                                                               self.settings)
        if output.suffix.lower() != ".gpkg":
            output = output.with_suffix(".gpkg")
        options = self.dock.options()
        gsd, _, _ = self._gsd_tile_overlap()
        params = {k: v for k, v in options.items() if v is not None and k != "gsd"}
        params["dates"] = {k: v for k, v in options["dates"].items() if v}
        params["labels"] = {"before": before.name(), "after": after.name()}
        return CaptionRequest(
            before=LayerSource.of(before), after=LayerSource.of(after), aoi=QgsGeometry(self.aoi),
            aoi_crs=self.aoi_crs, gsd=gsd, output=output, client=self._client(), params=params,
            transform_context=self.project.transformContext())

    def run(self) -> CaptionTask | None:
        if self.task is not None:
            self._message("a run is already in progress")
            return None
        try:
            request = self.build_request()
        except (ValueError, BackendError) as exc:
            self._message(exc.detail if isinstance(exc, BackendError) else str(exc))
            return None
        dates = request.params.get("dates") or {}
        group = f"HiSem {dates.get('before') or request.before.name} → {dates.get('after') or request.after.name}"
        self.task = CaptionTask(request, group, self._succeeded, self._failed, self.project)
        self.task.progressChanged.connect(lambda value: self.dock.set_progress(value, f"{value:.0f} %"))
        self.dock.set_running(True)
        self.settings = self.dock.update_settings(self.settings)
        self.settings.output_dir = str(request.output.parent)
        self.settings.save()
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _succeeded(self, outcome: CaptionOutcome) -> None:
        self.task = None
        self.last_gpkg = Path(outcome.gpkg)
        if self._unloaded:
            return
        self.dock.set_running(False)
        self._message(f"{outcome.changes} changes in {outcome.tiles} tiles, saved in {outcome.gpkg}",
                      Qgis.MessageLevel.Success, 10)

    def _failed(self, message: str, cancelled: bool) -> None:
        self.task = None
        if self._unloaded:  # the plugin went away while its task ran: the dock is gone
            return
        self.dock.set_running(False)
        self._message(message, Qgis.MessageLevel.Info if cancelled else Qgis.MessageLevel.Critical, 0)

    # -- results ----------------------------------------------------------------------------------

    @staticmethod
    def _gpkg_of(layer: QgsVectorLayer) -> Path | None:
        """The GeoPackage of a HiSem ``changes`` layer, None for any other layer."""
        parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
        is_changes = layer.fields().indexOf("change_id") >= 0 and layer.fields().indexOf("caption") >= 0
        return Path(parts["path"]) if is_changes and parts.get("path", "").lower().endswith(".gpkg") else None

    def _changes_layer(self) -> QgsVectorLayer | None:
        """The project's layer of the last result's changes, else the active layer if it is one."""
        layers = [layer for layer in self.project.mapLayers().values() if isinstance(layer, QgsVectorLayer)]
        last = next((layer for layer in layers if self.last_gpkg is not None
                     and self._gpkg_of(layer) == self.last_gpkg), None)
        active = self.iface.activeLayer()
        if last is None and isinstance(active, QgsVectorLayer) and self._gpkg_of(active) is not None:
            return active
        return last

    def review(self) -> ReviewPanel | None:
        layer = self._changes_layer()
        if layer is None:
            self._message("nothing to review: run Caption changes first, or select a HiSem changes layer")
            return None
        if self.review_panel is not None:
            self.iface.removeDockWidget(self.review_panel)
            self.review_panel.deleteLater()
        self.review_panel = ReviewPanel(self.iface, layer, self.iface.mainWindow())
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.review_panel)
        return self.review_panel

    def export(self, pdf: Path | None = None, current_view: bool | None = None) -> list[Path]:
        """PDF and PNG of the last result; asks for the file and the extent unless given (tests, scripts)."""
        layer = self._changes_layer()
        gpkg = self._gpkg_of(layer) if layer is not None else self.last_gpkg
        if gpkg is None:
            self._message("no result to map: run Caption changes first, or select a HiSem changes layer")
            return []
        if pdf is None:
            path, _filter = QFileDialog.getSaveFileName(self.dock, "Export the map", str(gpkg.with_suffix(".pdf")),
                                                        "PDF (*.pdf)")
            if not path:
                return []
            pdf = Path(path)
        if current_view is None:
            current_view = QMessageBox.question(
                self.dock, TITLE, "Map the current view of the map canvas?\n\nNo: the whole area analysed.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes
        canvas = self.iface.mapCanvas()
        pdf = pdf.with_suffix(".pdf")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            written = export_map(gpkg, self.dock.before_layer(), self.dock.after_layer(), pdf, pdf.with_suffix(".png"),
                                 extent=canvas.extent() if current_view else None,
                                 extent_crs=canvas.mapSettings().destinationCrs() if current_view else None)
        except (ExportError, OSError, ValueError) as exc:
            self._message(f"the map was not exported: {exc}", Qgis.MessageLevel.Critical, 0)
            return []
        finally:
            QApplication.restoreOverrideCursor()
        self._message("map saved: " + ", ".join(str(p) for p in written), Qgis.MessageLevel.Success, 10)
        return written

    def unload(self) -> None:
        self._unloaded = True
        if self.review_panel is not None:
            self.iface.removeDockWidget(self.review_panel)
            self.review_panel.deleteLater()
            self.review_panel = None
        canvas = self.iface.mapCanvas()
        if self._tool is not None and canvas.mapTool() is self._tool:
            canvas.unsetMapTool(self._tool)
        if self._aoi_band is not None:
            canvas.scene().removeItem(self._aoi_band)
            self._aoi_band = None
        if self.task is not None:
            self.task.cancel()
