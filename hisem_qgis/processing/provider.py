"""The ``hisem`` Processing provider: one stable id, so models and scripts that name ``hisem:…`` keep working."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..metadata_info import plugin_version
from . import ICON_PATH
from .caption_changes import CaptionChangesAlgorithm
from .export_map import ExportMapAlgorithm


class HisemProvider(QgsProcessingProvider):
    """Holds ``hisem:caption_changes`` and ``hisem:export_map``."""

    def id(self) -> str:
        return "hisem"

    def name(self) -> str:
        return "HiSem"

    def longName(self) -> str:
        return f"HiSem change captioning {plugin_version()}"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def svgIconPath(self) -> str:
        return str(ICON_PATH)

    def versionInfo(self) -> str:
        return plugin_version()

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(CaptionChangesAlgorithm())
        self.addAlgorithm(ExportMapAlgorithm())
