"""The HiSem dock: widgets only, no I/O and no business logic.

It shows what the analyst chooses (layers, dates, AOI, model and tiling, backend, output) and emits
signals for what they ask (draw an AOI, check or start the backend, run, cancel, diagnostics); the
plugin's controller connects those signals and calls the ``set_*`` methods back.
"""

from __future__ import annotations

from typing import Any

from qgis.core import QgsMapLayer, QgsMapLayerProxyModel, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgsAuthConfigSelect, QgsCollapsibleGroupBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .dates import guess_date
from .metadata_info import plugin_name, plugin_version
from .settings import DEFAULT_URL, PluginSettings

# What ``aoiRequested`` carries: the AOI source the analyst picked.
AOI_RECTANGLE, AOI_POLYGON, AOI_CANVAS, AOI_LAYER, AOI_SELECTION = (
    "rectangle", "polygon", "canvas", "layer", "selection")

__all__ = ["AOI_CANVAS", "AOI_LAYER", "AOI_POLYGON", "AOI_RECTANGLE", "AOI_SELECTION", "HisemDock",
           "format_estimate", "guess_date"]


def format_estimate(area_m2: float, tiles: int) -> str:
    """ "0.25 km², 81 tiles": km² once the area is a hectare or more, so that small AOIs stay readable."""
    if area_m2 < 10_000:
        area = f"{area_m2:,.0f} m²"
    else:
        km2 = area_m2 / 1e6
        area = f"{km2:.3g} km²" if km2 < 1000 else f"{km2:,.0f} km²"
    return f"{area}, {tiles:,} tile{'' if tiles == 1 else 's'}"


class HisemDock(QDockWidget):
    """Everything the analyst sets before pressing Caption changes, in collapsible sections."""

    aoiRequested = pyqtSignal(str)
    checkBackendRequested = pyqtSignal()
    startBackendRequested = pyqtSignal()
    runRequested = pyqtSignal()
    cancelRequested = pyqtSignal()
    diagnosticsRequested = pyqtSignal()
    reviewRequested = pyqtSignal()
    exportRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(plugin_name(), parent)
        self.setObjectName("HisemDock")
        self._preferred_model = ""  # the last-used model, selected when the backend lists it
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget(scroll)
        column = QVBoxLayout(body)
        column.addWidget(self._images_section(body))
        column.addWidget(self._aoi_section(body))
        column.addWidget(self._model_section(body))
        column.addWidget(self._backend_section(body))
        column.addWidget(self._output_section(body))
        column.addLayout(self._run_row(body))
        column.addWidget(self._results_section(body))
        self.version_label = QLabel(f"{plugin_name()} {plugin_version()}", body)
        self.version_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        column.addWidget(self.version_label)
        column.addStretch(1)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.set_running(False)

    # -- sections --------------------------------------------------------------------------------

    @staticmethod
    def _section(title: str, parent: QWidget) -> tuple[QgsCollapsibleGroupBox, QFormLayout]:
        box = QgsCollapsibleGroupBox(title, parent)
        box.setObjectName(f"hisem{title.title().replace(' ', '')}Section")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return box, form

    def _images_section(self, parent: QWidget) -> QgsCollapsibleGroupBox:
        box, form = self._section("Images", parent)
        self.before_combo = self._layer_combo(box, QgsMapLayerProxyModel.Filter.RasterLayer)
        self.after_combo = self._layer_combo(box, QgsMapLayerProxyModel.Filter.RasterLayer)
        self.before_date_edit = self._date_edit(box)
        self.after_date_edit = self._date_edit(box)
        form.addRow("Before (date 1)", self.before_combo)
        form.addRow("Before date", self.before_date_edit)
        form.addRow("After (date 2)", self.after_combo)
        form.addRow("After date", self.after_date_edit)
        # A new layer brings its own date; the analyst corrects it if the guess is wrong.
        self.before_combo.layerChanged.connect(lambda layer: self.before_date_edit.setText(guess_date(layer)))
        self.after_combo.layerChanged.connect(lambda layer: self.after_date_edit.setText(guess_date(layer)))
        return box

    def _aoi_section(self, parent: QWidget) -> QgsCollapsibleGroupBox:
        box, form = self._section("Area of interest", parent)
        grid = QGridLayout()
        self.draw_rectangle_button = self._aoi_button("Draw rectangle", AOI_RECTANGLE, box)
        self.draw_polygon_button = self._aoi_button("Draw polygon", AOI_POLYGON, box)
        self.canvas_extent_button = self._aoi_button("Canvas extent", AOI_CANVAS, box)
        grid.addWidget(self.draw_rectangle_button, 0, 0)
        grid.addWidget(self.draw_polygon_button, 0, 1)
        grid.addWidget(self.canvas_extent_button, 1, 0, 1, 2)
        form.addRow(grid)
        self.aoi_layer_combo = self._layer_combo(box, QgsMapLayerProxyModel.Filter.All)
        self.layer_extent_button = self._aoi_button("Layer extent", AOI_LAYER, box)
        form.addRow(self.layer_extent_button, self.aoi_layer_combo)
        self.aoi_polygon_combo = self._layer_combo(box, QgsMapLayerProxyModel.Filter.PolygonLayer)
        self.selected_features_button = self._aoi_button("Selected features", AOI_SELECTION, box)
        form.addRow(self.selected_features_button, self.aoi_polygon_combo)
        self.aoi_label = QLabel("No AOI: the whole overlap of the two layers", box)
        self.aoi_label.setWordWrap(True)
        form.addRow("AOI", self.aoi_label)
        self.estimate_label = QLabel("", box)
        form.addRow("Estimate", self.estimate_label)
        return box

    def _model_section(self, parent: QWidget) -> QgsCollapsibleGroupBox:
        box, form = self._section("Model and tiling", parent)
        self.model_combo = QComboBox(box)
        self.model_combo.setToolTip("The backend's models (press Check to list them)")
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        form.addRow("Model", self.model_combo)
        self.gsd_spin = QDoubleSpinBox(box)
        self.gsd_spin.setRange(0.0, 1000.0)
        self.gsd_spin.setDecimals(3)
        self.gsd_spin.setSingleStep(0.1)
        self.gsd_spin.setSuffix(" m")
        self.gsd_spin.setSpecialValueText("model's")
        self.gsd_spin.setToolTip("Ground sample distance both images are resampled to (the model's by default)")
        form.addRow("GSD", self.gsd_spin)
        self.tile_size_spin = self._spin(box, 0, 4096, 0, " px", "model's")
        self.tile_size_spin.setSingleStep(32)
        form.addRow("Tile size", self.tile_size_spin)
        self.overlap_spin = self._spin(box, -1, 2048, -1, " px", "auto (tile / 8)")
        form.addRow("Overlap", self.overlap_spin)
        self.beam_spin = self._spin(box, 1, 10, 3)
        self.beam_spin.setToolTip("Beam width of the caption decoder; 1 is greedy (fastest)")
        form.addRow("Beam", self.beam_spin)
        self.threshold_spin = QDoubleSpinBox(box)
        self.threshold_spin.setRange(0.05, 0.95)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(0.5)
        self.threshold_spin.setToolTip("Change probability above which a tile or a pixel counts as changed")
        form.addRow("Change threshold", self.threshold_spin)
        self.max_tiles_spin = self._spin(box, 1, 1_000_000, 10_000)
        self.max_tiles_spin.setToolTip("Refuse runs with more tiles than this")
        form.addRow("Max tiles", self.max_tiles_spin)
        return box

    def _backend_section(self, parent: QWidget) -> QgsCollapsibleGroupBox:
        box, form = self._section("Backend", parent)
        self.url_edit = QLineEdit(DEFAULT_URL, box)
        self.url_edit.setPlaceholderText(DEFAULT_URL)
        form.addRow("URL", self.url_edit)
        self.auth_select = QgsAuthConfigSelect(box)
        self.auth_select.setToolTip("The access token of a remote backend, kept in QGIS's authentication "
                                    "database (a Basic configuration: put the token in its password)")
        form.addRow("Token", self.auth_select)
        self.backend_status_label = QLabel("Not checked", box)
        self.backend_status_label.setWordWrap(True)
        self.backend_status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Status", self.backend_status_label)
        self.hisem_path_widget = QgsFileWidget(box)
        self.hisem_path_widget.setStorageMode(QgsFileWidget.StorageMode.GetFile)
        self.hisem_path_widget.setToolTip("The `hisem` command that Start local backend runs "
                                          "(e.g. /path/to/venv/bin/hisem); found on PATH when empty")
        form.addRow("hisem command", self.hisem_path_widget)
        row = QHBoxLayout()
        self.check_button = QPushButton("Check", box)
        self.check_button.clicked.connect(self.checkBackendRequested)
        self.start_backend_button = QPushButton("Start local backend", box)
        self.start_backend_button.clicked.connect(self.startBackendRequested)
        row.addWidget(self.check_button)
        row.addWidget(self.start_backend_button)
        form.addRow(row)
        return box

    def _output_section(self, parent: QWidget) -> QgsCollapsibleGroupBox:
        box, form = self._section("Output", parent)
        self.output_widget = QgsFileWidget(box)
        self.output_widget.setStorageMode(QgsFileWidget.StorageMode.SaveFile)
        self.output_widget.setFilter("GeoPackage (*.gpkg)")
        self.output_widget.setDialogTitle("Save the results in a GeoPackage")
        self.output_widget.setToolTip("Empty: a new GeoPackage next to the project")
        form.addRow("GeoPackage", self.output_widget)
        return box

    def _run_row(self, parent: QWidget) -> QVBoxLayout:
        column = QVBoxLayout()
        row = QHBoxLayout()
        self.run_button = QPushButton("Caption changes", parent)
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.runRequested)
        self.cancel_button = QPushButton("Cancel", parent)
        self.cancel_button.clicked.connect(self.cancelRequested)
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        column.addLayout(row)
        self.progress_bar = QProgressBar(parent)
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_label = QLabel("", parent)
        self.progress_label.setWordWrap(True)
        column.addWidget(self.progress_bar)
        column.addWidget(self.progress_label)
        self.diagnostics_button = QPushButton("Copy diagnostics", parent)
        self.diagnostics_button.setToolTip("Copy QGIS, GDAL and backend versions to the clipboard for a bug report")
        self.diagnostics_button.clicked.connect(self.diagnosticsRequested)
        column.addWidget(self.diagnostics_button)
        return column

    def _results_section(self, parent: QWidget) -> QGroupBox:
        """What follows a run: not a setting, so a plain box below the progress, always open."""
        box = QGroupBox("Results", parent)
        box.setObjectName("hisemResultsSection")
        row = QHBoxLayout(box)
        self.review_button = QPushButton("Review changes…", box)
        self.review_button.setToolTip("Accept, reject or correct the captions of the last result (or of the "
                                      "selected changes layer); stored in its GeoPackage")
        self.review_button.clicked.connect(self.reviewRequested)
        self.export_button = QPushButton("Export map…", box)
        self.export_button.setToolTip("An A4 map of the last result as PDF and PNG: before and after side by side, "
                                      "numbered changes and their captions")
        self.export_button.clicked.connect(self.exportRequested)
        row.addWidget(self.review_button)
        row.addWidget(self.export_button)
        return box

    # -- small builders --------------------------------------------------------------------------

    @staticmethod
    def _layer_combo(parent: QWidget, filters: QgsMapLayerProxyModel.Filter) -> QgsMapLayerComboBox:
        combo = QgsMapLayerComboBox(parent)
        combo.setFilters(filters)
        combo.setAllowEmptyLayer(True)
        combo.setLayer(None)
        return combo

    @staticmethod
    def _date_edit(parent: QWidget) -> QLineEdit:
        edit = QLineEdit(parent)
        edit.setPlaceholderText("YYYY-MM-DD")
        edit.setToolTip("Acquisition date, kept in the results' provenance (read from the layer where possible)")
        return edit

    @staticmethod
    def _spin(parent: QWidget, low: int, high: int, value: int, suffix: str = "", special: str = "") -> QSpinBox:
        spin = QSpinBox(parent)
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        if special:
            spin.setSpecialValueText(special)  # shown at the minimum, which means "let the backend choose"
        return spin

    def _aoi_button(self, text: str, mode: str, parent: QWidget) -> QPushButton:
        button = QPushButton(text, parent)
        button.setObjectName(f"hisemAoi{mode.title()}")
        button.clicked.connect(lambda _checked=False, m=mode: self.aoiRequested.emit(m))
        return button

    def _model_changed(self, index: int) -> None:
        model = self.model_combo.itemData(index)
        if isinstance(model, dict) and model.get("gsd_m"):
            self.gsd_spin.setValue(float(model["gsd_m"]))

    # -- what the controller reads ---------------------------------------------------------------

    def before_layer(self) -> QgsRasterLayer | None:
        return self.before_combo.currentLayer()

    def after_layer(self) -> QgsRasterLayer | None:
        return self.after_combo.currentLayer()

    def aoi_layer(self) -> QgsMapLayer | None:
        """The layer whose extent "Layer extent" uses."""
        return self.aoi_layer_combo.currentLayer()

    def aoi_polygon_layer(self) -> QgsVectorLayer | None:
        """The polygon layer whose selected features "Selected features" uses."""
        return self.aoi_polygon_combo.currentLayer()

    def model_id(self) -> str | None:
        model = self.model_combo.currentData()
        return model["id"] if isinstance(model, dict) else None

    def backend_url(self) -> str:
        return self.url_edit.text().strip() or DEFAULT_URL

    def authcfg(self) -> str:
        return self.auth_select.configId()

    def output_path(self) -> str:
        return self.output_widget.filePath().strip()

    def options(self) -> dict[str, Any]:
        """The job's params as the widgets show them; None where the backend should choose."""
        overlap = self.overlap_spin.value()
        return {
            "model": self.model_id(),
            "gsd": self.gsd_spin.value() or None,
            "tile_size": self.tile_size_spin.value() or None,
            "overlap": None if overlap < 0 else overlap,
            "beam": self.beam_spin.value(),
            "threshold": round(self.threshold_spin.value(), 4),
            "max_tiles": self.max_tiles_spin.value(),
            "dates": {"before": self.before_date_edit.text().strip() or None,
                      "after": self.after_date_edit.text().strip() or None},
        }

    # -- what the controller shows ---------------------------------------------------------------

    def set_models(self, models: list[dict[str, Any]]) -> None:
        """Fill the model combo; keep the current model if still offered, else select the default one."""
        previous = self.model_id() or self._preferred_model
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for model in models:
            self.model_combo.addItem(f"{model['id']} ({model.get('gsd_m', '?')} m, {model.get('tile_size', '?')} px)",
                                     model)
        self.model_combo.blockSignals(False)
        ids = [m["id"] for m in models]
        default = next((i for i, m in enumerate(models) if m.get("default")), 0)
        index = ids.index(previous) if previous in ids else default
        if models:
            self.model_combo.setCurrentIndex(index)
            self._model_changed(index)

    def set_aoi_summary(self, text: str) -> None:
        self.aoi_label.setText(text)

    def set_estimate(self, area_m2: float | None, tiles: int | None) -> None:
        self.estimate_label.setText("" if area_m2 is None or tiles is None else format_estimate(area_m2, tiles))

    def set_backend_status(self, text: str, ok: bool) -> None:
        self.backend_status_label.setText(text)
        self.backend_status_label.setProperty("ok", ok)
        self.backend_status_label.setStyleSheet("" if ok else "color: #b00020;")

    def set_running(self, running: bool) -> None:
        """While a run is in flight: Cancel on, everything that would start another run off."""
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.start_backend_button.setEnabled(not running)
        if not running:
            self.progress_bar.setValue(0)

    def set_progress(self, percent: float, text: str = "") -> None:
        self.progress_bar.setValue(max(0, min(100, round(percent))))
        self.progress_label.setText(text)

    def set_backend_url(self, url: str) -> None:
        self.url_edit.setText(url)

    def set_authcfg(self, authcfg: str) -> None:
        self.auth_select.setConfigId(authcfg)

    def set_output_path(self, path: str) -> None:
        self.output_widget.setFilePath(path)

    # -- settings (values only; the controller loads and saves them) -----------------------------

    def apply_settings(self, settings: PluginSettings) -> None:
        self.set_backend_url(settings.backend_url)
        self._preferred_model = settings.model
        if settings.authcfg:
            self.set_authcfg(settings.authcfg)
        self.tile_size_spin.setValue(settings.tile_size)
        self.overlap_spin.setValue(settings.overlap)
        self.beam_spin.setValue(settings.beam)
        self.threshold_spin.setValue(settings.threshold)
        self.max_tiles_spin.setValue(settings.max_tiles)
        self.hisem_path_widget.setFilePath(settings.hisem_path)

    def hisem_path(self) -> str:
        return self.hisem_path_widget.filePath().strip()

    def update_settings(self, settings: PluginSettings) -> PluginSettings:
        """Copy what the analyst chose into ``settings`` (to be saved by the caller)."""
        settings.backend_url = self.backend_url()
        settings.authcfg = self.authcfg()
        settings.model = self.model_id() or settings.model
        settings.tile_size = self.tile_size_spin.value()
        settings.overlap = self.overlap_spin.value()
        settings.beam = self.beam_spin.value()
        settings.threshold = self.threshold_spin.value()
        settings.max_tiles = self.max_tiles_spin.value()
        settings.hisem_path = self.hisem_path() or settings.hisem_path
        return settings
