"""HiSem change captioning for QGIS.

The plugin uses only what QGIS ships (stdlib, PyQGIS through qgis.PyQt, osgeo): the model and its
heavy dependencies live in the separate `hisem` backend process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qgis.gui import QgisInterface

    from .plugin import HisemPlugin


def classFactory(iface: QgisInterface) -> HisemPlugin:
    from .plugin import HisemPlugin

    return HisemPlugin(iface)
