"""The dock driven as an analyst would: layers, AOI, Check, Caption changes; errors leave no trace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication
from service_support import Server, free_port, start_server

from hisem_qgis.controller import DockController
from hisem_qgis.dock import AOI_CANVAS, AOI_LAYER, HisemDock


@pytest.fixture(scope="module")
def backend(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    server = start_server(tmp_path_factory.mktemp("controller-serve"), tiny_model.parent)
    yield server
    server.stop()


@pytest.fixture()
def session(qgis_iface, qgis_new_project, scene: Path):
    project = QgsProject.instance()
    before = QgsRasterLayer(str(scene / "before.tif"), "ortho 2019-05-01")
    after = QgsRasterLayer(str(scene / "after.tif"), "ortho 2024-05-01")
    project.addMapLayers([before, after])
    project.setCrs(before.crs())
    dock = HisemDock()
    controller = DockController(qgis_iface, dock, project)
    dock.before_combo.setLayer(before)
    dock.after_combo.setLayer(after)
    yield controller, dock, project, before
    controller.unload()


def _wait(controller: DockController, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while controller.task is not None and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    assert controller.task is None, "the run did not finish"


def test_check_aoi_estimate_and_run(session, backend: Server, model_id: str, tmp_path: Path) -> None:
    controller, dock, project, before = session
    dock.set_backend_url(backend.url)
    assert controller.check_backend()
    assert dock.model_combo.count() >= 1
    dock.model_combo.setCurrentIndex(next(i for i in range(dock.model_combo.count())
                                          if dock.model_combo.itemData(i)["id"] == model_id))
    dock.aoi_layer_combo.setLayer(before)
    dock.aoiRequested.emit(AOI_LAYER)
    assert controller.aoi is not None and controller.aoi.boundingBox() == before.extent()
    assert dock.estimate_label.text() == "0.0655 km², 81 tiles"  # 256 m a side at 0.5 m, 64 px tiles
    dock.set_output_path(str(tmp_path / "run.gpkg"))
    dock.runRequested.emit()
    assert controller.task is not None and not dock.run_button.isEnabled()
    _wait(controller)
    group = project.layerTreeRoot().findGroup("HiSem 2019-05-01 → 2024-05-01")
    assert group is not None and len(group.findLayers()) == 2
    assert (tmp_path / "run.gpkg").is_file() and dock.run_button.isEnabled()


def test_missing_aoi_or_backend_down_changes_nothing(session, qgis_iface, tmp_path: Path) -> None:
    controller, dock, project, _ = session
    layers_before = set(project.mapLayers())
    dock.runRequested.emit()  # no AOI yet
    assert controller.task is None
    dock.aoiRequested.emit(AOI_CANVAS)
    assert controller.aoi is not None
    dock.set_backend_url(f"http://127.0.0.1:{free_port()}")
    assert not controller.check_backend()
    assert "no backend at" in dock.backend_status_label.text()
    dock.set_output_path(str(tmp_path / "never.gpkg"))
    dock.runRequested.emit()
    _wait(controller, 60)
    assert set(project.mapLayers()) == layers_before and not (tmp_path / "never.gpkg").exists()
    assert project.layerTreeRoot().findGroup("HiSem 2019-05-01 → 2024-05-01") is None
