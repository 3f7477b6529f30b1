"""The plugin loads in the real QGIS (pytest-qgis, offscreen) and unloads cleanly."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import numpy as np
import pytest
from geo_helpers import write_tif
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QAction

import hisem_qgis
from hisem_qgis.metadata_info import plugin_metadata, plugin_version

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def plugin(qgis_iface):
    instance = hisem_qgis.classFactory(qgis_iface)
    instance.initGui()
    yield instance
    instance.unload()


def test_metadata_is_the_one_source_of_name_and_version() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "metadata.txt", encoding="utf-8")
    assert plugin_metadata()["name"] == parser["general"]["name"]
    assert plugin_version() == parser["general"]["version"]
    # The plugin folder's metadata.txt is the top-level file itself (a link), not a copy.
    assert (REPO / "hisem_qgis" / "metadata.txt").resolve() == (REPO / "metadata.txt").resolve()
    # The backend is released with the plugin: the same version.
    backend = tomllib.loads((REPO / "backend" / "pyproject.toml").read_text(encoding="utf-8"))
    assert backend["project"]["version"] == plugin_version()


def test_plugin_adds_action_and_opens_dock(plugin, qgis_iface) -> None:
    action = plugin.action
    assert isinstance(action, QAction)
    assert not action.icon().isNull(), "icon.svg must load"
    action.setChecked(True)
    # Offscreen the main window is never shown, so ask for the widget's own state.
    assert plugin.dock is not None and not plugin.dock.isHidden()
    assert plugin.dock.windowTitle() == plugin_metadata()["name"]
    action.setChecked(False)
    assert plugin.dock.isHidden()


def test_dock_lists_only_raster_layers(plugin, tmp_path) -> None:
    path = write_tif(tmp_path / "before.tif", np.zeros((3, 8, 8), np.uint8), gsd=0.5)
    layer = QgsRasterLayer(str(path), "before")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    try:
        plugin.action.setChecked(True)
        combo = plugin.dock.before_combo
        names = [combo.itemText(i) for i in range(combo.count())]
        assert "before" in names
        combo.setLayer(layer)
        assert plugin.dock.before_layer() is layer
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_unload_removes_everything(qgis_iface) -> None:
    instance = hisem_qgis.classFactory(qgis_iface)
    instance.initGui()
    instance.action.setChecked(True)
    instance.unload()
    assert instance.action is None and instance.dock is None
