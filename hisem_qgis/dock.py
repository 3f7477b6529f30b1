"""The HiSem dock: widgets only, no I/O and no business logic.

This first version lets the analyst pick the before and after raster layers; the AOI, model and
backend panels arrive with the plugin issue (see docs/plugin.md).
"""

from __future__ import annotations

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QDockWidget, QFormLayout, QLabel, QWidget

from .metadata_info import plugin_name, plugin_version


class HisemDock(QDockWidget):
    """Picks the two dated raster layers to compare."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(plugin_name(), parent)
        self.setObjectName("HisemDock")
        body = QWidget(self)
        form = QFormLayout(body)
        self.before_combo = self._raster_combo(body)
        self.after_combo = self._raster_combo(body)
        form.addRow("Before (date 1)", self.before_combo)
        form.addRow("After (date 2)", self.after_combo)
        self.version_label = QLabel(f"{plugin_name()} {plugin_version()}", body)
        form.addRow(self.version_label)
        self.setWidget(body)

    @staticmethod
    def _raster_combo(parent: QWidget) -> QgsMapLayerComboBox:
        combo = QgsMapLayerComboBox(parent)
        combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        combo.setAllowEmptyLayer(True)
        return combo

    def before_layer(self) -> QgsRasterLayer | None:
        return self.before_combo.currentLayer()

    def after_layer(self) -> QgsRasterLayer | None:
        return self.after_combo.currentLayer()
