"""Take docs/screenshots/dock.png: the real QGIS under Xvfb, the plugin's dock and a run's results.

Run by `make screenshot` as ``qgis --code docs/screenshots/dock_screenshot.py`` with
HISEM_SHOT_SCENE (a folder with before.tif / after.tif), HISEM_SHOT_URL (a running backend),
HISEM_SHOT_OUT (the PNG), HISEM_SHOT_GPKG (the run's GeoPackage) and optionally HISEM_SHOT_MODEL.
It drives the dock through the controller exactly as a click would, waits for the task, then grabs
QGIS's main window.
"""

import os
import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface

REPO = Path(os.environ.get("HISEM_SHOT_REPO", Path.cwd()))
sys.path.insert(0, str(REPO))
import hisem_qgis  # noqa: E402

scene = Path(os.environ["HISEM_SHOT_SCENE"])
out = Path(os.environ["HISEM_SHOT_OUT"])
plugin = hisem_qgis.classFactory(iface)
plugin.initGui()
project = QgsProject.instance()
before = QgsRasterLayer(str(scene / "before.tif"), "town 2019-05-01")
after = QgsRasterLayer(str(scene / "after.tif"), "town 2024-05-01")
project.addMapLayers([before, after])
project.setCrs(before.crs())
iface.mainWindow().resize(1600, 1000)
plugin.action.setChecked(True)
dock, controller = plugin.dock, plugin.controller
for panel in iface.mainWindow().findChildren(QDockWidget):
    if panel.objectName().startswith("Browser"):
        panel.hide()  # room for the map and the dock
iface.mainWindow().resizeDocks([dock], [470], Qt.Orientation.Horizontal)
dock.before_combo.setLayer(before)
dock.after_combo.setLayer(after)
dock.before_date_edit.setText("2019-05-01")
dock.after_date_edit.setText("2024-05-01")
dock.set_backend_url(os.environ["HISEM_SHOT_URL"])
if not controller.check_backend():
    print("screenshot: backend check failed:", dock.backend_status_label.text(), flush=True)  # noqa: T201 (a script)
    QgsApplication.exit(1)
wanted = os.environ.get("HISEM_SHOT_MODEL")
for i in range(dock.model_combo.count()):
    if wanted and dock.model_combo.itemData(i)["id"] == wanted:
        dock.model_combo.setCurrentIndex(i)
dock.aoi_layer_combo.setLayer(before)
dock.aoiRequested.emit("layer")
result = Path(os.environ.get("HISEM_SHOT_GPKG", out.with_suffix(".gpkg")))
result.unlink(missing_ok=True)
dock.set_output_path(str(result))
controller.run()


def finish() -> None:
    if controller.task is not None:
        QTimer.singleShot(500, finish)
        return
    canvas = iface.mapCanvas()
    canvas.setExtent(before.extent())
    before.setOpacity(1.0)
    after.setOpacity(1.0)
    root = project.layerTreeRoot()
    root.findLayer(before.id()).setItemVisibilityChecked(False)  # the after image under the results
    canvas.refreshAllLayers()

    def grab() -> None:
        if canvas.isDrawing():
            QTimer.singleShot(300, grab)
            return
        iface.mainWindow().grab().save(str(out))
        print(f"screenshot: wrote {out}", flush=True)  # noqa: T201 (a script)
        QgsApplication.exit(0)

    QTimer.singleShot(1500, grab)


QTimer.singleShot(500, finish)
