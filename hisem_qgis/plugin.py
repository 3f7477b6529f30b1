"""Plugin lifecycle: toolbar button and menu entry that show the HiSem dock, and the Processing provider."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication
from qgis.gui import QgisInterface
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .controller import DockController
from .dock import HisemDock
from .metadata_info import plugin_name
from .processing.provider import HisemProvider

ICON_PATH = Path(__file__).resolve().parent / "icon.svg"
MENU = "&HiSem"


class HisemPlugin:
    """What QGIS loads: owns the action and the dock, and removes both on unload."""

    def __init__(self, iface: QgisInterface) -> None:
        self.iface = iface
        self.action: QAction | None = None
        self.dock: HisemDock | None = None
        self.controller: DockController | None = None
        self.provider: HisemProvider | None = None

    def initProcessing(self) -> None:
        """Register the ``hisem`` provider; QGIS calls this for qgis_process too (hasProcessingProvider=yes)."""
        if self.provider is None:
            self.provider = HisemProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()  # the desktop calls only initGui
        self.action = QAction(QIcon(str(ICON_PATH)), f"{plugin_name()}…", self.iface.mainWindow())
        self.action.setObjectName("hisemShowDock")
        self.action.setCheckable(True)
        self.action.toggled.connect(self._set_dock_visible)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToRasterMenu(MENU, self.action)

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.controller is not None:
            self.controller.unload()
            self.controller = None
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None

    def _set_dock_visible(self, visible: bool) -> None:
        if self.dock is None:
            self.dock = HisemDock(self.iface.mainWindow())
            self.controller = DockController(self.iface, self.dock)
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
            # Closing the dock with its own button unchecks the toolbar action.
            self.dock.visibilityChanged.connect(self._sync_action)
        self.dock.setVisible(visible)

    def _sync_action(self, visible: bool) -> None:
        if self.action is not None and self.action.isChecked() != visible:
            self.action.setChecked(visible)
