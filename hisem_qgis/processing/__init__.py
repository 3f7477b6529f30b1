"""The plugin's Processing provider: the dock's pipeline as algorithms for batch, Model Builder and qgis_process."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

ICON_PATH = Path(__file__).resolve().parent.parent / "icon.svg"


def tr(text: str) -> str:
    return QCoreApplication.translate("HisemProcessing", text)


class HisemAlgorithm(QgsProcessingAlgorithm):
    """What every HiSem algorithm shares: no group (the provider is the group) and the plugin's icon."""

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))
