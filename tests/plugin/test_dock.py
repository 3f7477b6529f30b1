"""The dock's widgets in the real QGIS (offscreen): what it lists, what it emits, what options() returns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from geo_helpers import write_tif
from qgis.core import (
    QgsDateTimeRange,
    QgsLayerMetadata,
    QgsProject,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsSettings,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import QDate, QDateTime, QSettings, QTime
from qgis.PyQt.QtWidgets import QScrollArea

from hisem_qgis.dates import date_from_text, guess_date
from hisem_qgis.dock import HisemDock, format_estimate
from hisem_qgis.settings import DEFAULT_URL, PluginSettings

MODELS = [
    {"id": "hisem-lite-synthetic", "preset": "lite", "tile_size": 256, "gsd_m": 0.5, "default": True},
    {"id": "hisem-base-levircc", "preset": "base", "tile_size": 256, "gsd_m": 0.3, "default": False},
]


def make_raster(path: Path) -> Path:
    return write_tif(path, np.zeros((3, 8, 8), np.uint8), gsd=0.5)


@pytest.fixture()
def dock(qgis_iface: Any) -> Iterator[HisemDock]:
    widget = HisemDock()
    yield widget
    widget.deleteLater()


@pytest.fixture()
def layers(tmp_path: Path, qgis_iface: Any, qgis_new_project: Any) -> Iterator[dict[str, Any]]:
    rasters = {name: QgsRasterLayer(str(make_raster(tmp_path / f"{name}.tif")), name)
               for name in ("ortho_2019-05-01", "S2_20230415T101021")}
    polygons = QgsVectorLayer("Polygon?crs=EPSG:32633", "fields", "memory")
    points = QgsVectorLayer("Point?crs=EPSG:32633", "wells", "memory")
    added = [*rasters.values(), polygons, points]
    assert all(layer.isValid() for layer in added)
    QgsProject.instance().addMapLayers(added)
    yield {"rasters": rasters, "polygons": polygons, "points": points}
    QgsProject.instance().removeMapLayers([layer.id() for layer in added])


def combo_names(combo: Any) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count()) if combo.itemText(i)]


def test_dock_builds_as_scrollable_sections(dock: HisemDock) -> None:
    assert isinstance(dock.widget(), QScrollArea)
    titles = [box.title() for box in dock.findChildren(QgsCollapsibleGroupBox)]
    assert titles == ["Images", "Area of interest", "Model and tiling", "Backend", "Output"]
    assert dock.url_edit.text() == DEFAULT_URL
    assert dock.run_button.text() == "Caption changes"
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()


def test_combos_list_the_right_layer_kinds(dock: HisemDock, layers: dict[str, Any]) -> None:
    rasters = sorted(layers["rasters"])
    assert sorted(combo_names(dock.before_combo)) == rasters
    assert sorted(combo_names(dock.after_combo)) == rasters
    assert combo_names(dock.aoi_polygon_combo) == ["fields"]
    assert sorted(combo_names(dock.aoi_layer_combo)) == sorted([*rasters, "fields", "wells"])
    dock.aoi_polygon_combo.setLayer(layers["polygons"])
    assert dock.aoi_polygon_layer() is layers["polygons"]


def test_choosing_a_layer_fills_its_date(dock: HisemDock, layers: dict[str, Any]) -> None:
    dock.before_combo.setLayer(layers["rasters"]["ortho_2019-05-01"])
    dock.after_combo.setLayer(layers["rasters"]["S2_20230415T101021"])
    assert dock.before_layer() is layers["rasters"]["ortho_2019-05-01"]
    assert dock.before_date_edit.text() == "2019-05-01"
    assert dock.after_date_edit.text() == "2023-04-15"
    dock.after_date_edit.setText("2023-04-16")  # the analyst corrects it
    assert dock.options()["dates"] == {"before": "2019-05-01", "after": "2023-04-16"}


def test_options_reflect_the_widgets(dock: HisemDock) -> None:
    defaults = dock.options()
    assert defaults == {"model": None, "gsd": None, "tile_size": None, "overlap": None, "beam": 3,
                        "threshold": 0.5, "max_tiles": 10_000, "dates": {"before": None, "after": None}}
    dock.set_models(MODELS)
    dock.gsd_spin.setValue(0.8)
    dock.tile_size_spin.setValue(128)
    dock.overlap_spin.setValue(16)
    dock.beam_spin.setValue(5)
    dock.threshold_spin.setValue(0.35)
    dock.max_tiles_spin.setValue(500)
    dock.before_date_edit.setText("2019")
    assert dock.options() == {"model": "hisem-lite-synthetic", "gsd": 0.8, "tile_size": 128, "overlap": 16,
                              "beam": 5, "threshold": 0.35, "max_tiles": 500,
                              "dates": {"before": "2019", "after": None}}


def test_spins_keep_to_the_backends_ranges(dock: HisemDock) -> None:
    dock.beam_spin.setValue(50)
    dock.threshold_spin.setValue(0.99)
    assert dock.beam_spin.value() == 10 and dock.threshold_spin.value() == pytest.approx(0.95)
    dock.threshold_spin.setValue(0.0)
    assert dock.threshold_spin.value() == pytest.approx(0.05)


def test_set_models_fills_the_combo_and_the_default_gsd(dock: HisemDock) -> None:
    dock.set_models(MODELS)
    assert dock.model_combo.count() == 2
    assert "hisem-base-levircc" in dock.model_combo.itemText(1) and "0.3 m" in dock.model_combo.itemText(1)
    assert dock.model_id() == "hisem-lite-synthetic"  # the default one
    assert dock.gsd_spin.value() == pytest.approx(0.5)
    dock.model_combo.setCurrentIndex(1)
    assert dock.gsd_spin.value() == pytest.approx(0.3)
    # A refresh keeps the analyst's model.
    dock.set_models(list(reversed(MODELS)))
    assert dock.model_id() == "hisem-base-levircc"
    dock.set_models([])
    assert dock.model_combo.count() == 0 and dock.model_id() is None


@pytest.mark.parametrize(("text", "expected"), [
    ("ortho_2019-05-01", "2019-05-01"),
    ("ortho 2019_05_01 rgb", "2019-05-01"),
    ("S2A_MSIL2A_20230415T101021_N0509", "2023-04-15"),
    ("aerial 2021", "2021"),
    ("tile_32633_500000", ""),  # an EPSG code and a coordinate, not dates
    ("scan_20191345_2018", "2018"),  # not a real day: the year after it
    ("before", ""),
])
def test_date_from_text(text: str, expected: str) -> None:
    assert date_from_text(text) == expected


def test_guess_date_prefers_metadata_then_name_then_file(tmp_path: Path, qgis_iface: Any) -> None:
    path = make_raster(tmp_path / "scene_20200704.tif")
    layer = QgsRasterLayer(str(path), "after 2022")
    assert guess_date(layer) == "2022"  # the layer name
    unnamed = QgsRasterLayer(str(path), "after")
    assert guess_date(unnamed) == "2020-07-04"  # the file name
    temporal = layer.temporalProperties()
    temporal.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    temporal.setFixedTemporalRange(QgsDateTimeRange(QDateTime(QDate(2021, 6, 1), QTime(0, 0)),
                                                    QDateTime(QDate(2021, 6, 2), QTime(0, 0))))
    temporal.setIsActive(True)
    assert guess_date(layer) == "2021-06-01"  # the layer's time settings
    metadata = QgsLayerMetadata()
    extent = QgsLayerMetadata.Extent()
    extent.setTemporalExtents([QgsDateTimeRange(QDateTime(QDate(2018, 9, 30), QTime(10, 0)),
                                                QDateTime(QDate(2018, 9, 30), QTime(11, 0)))])
    metadata.setExtent(extent)
    layer.setMetadata(metadata)
    assert guess_date(layer) == "2018-09-30"
    assert guess_date(None) == ""


def test_buttons_emit_their_signals(dock: HisemDock) -> None:
    seen: list[str] = []
    dock.aoiRequested.connect(lambda mode: seen.append(f"aoi:{mode}"))
    dock.checkBackendRequested.connect(lambda: seen.append("check"))
    dock.startBackendRequested.connect(lambda: seen.append("start"))
    dock.runRequested.connect(lambda: seen.append("run"))
    dock.cancelRequested.connect(lambda: seen.append("cancel"))
    dock.diagnosticsRequested.connect(lambda: seen.append("diagnostics"))
    for button in (dock.draw_rectangle_button, dock.draw_polygon_button, dock.canvas_extent_button,
                   dock.layer_extent_button, dock.selected_features_button, dock.check_button,
                   dock.start_backend_button, dock.run_button, dock.diagnostics_button):
        button.click()
    dock.set_running(True)
    dock.cancel_button.click()
    assert seen == ["aoi:rectangle", "aoi:polygon", "aoi:canvas", "aoi:layer", "aoi:selection", "check", "start",
                    "run", "diagnostics", "cancel"]


def test_set_running_toggles_buttons(dock: HisemDock) -> None:
    dock.set_running(True)
    assert not dock.run_button.isEnabled() and dock.cancel_button.isEnabled()
    assert not dock.start_backend_button.isEnabled()
    dock.set_progress(42.4, "34 of 81 tiles")
    assert dock.progress_bar.value() == 42 and dock.progress_label.text() == "34 of 81 tiles"
    dock.set_running(False)
    assert dock.run_button.isEnabled() and not dock.cancel_button.isEnabled()
    assert dock.progress_bar.value() == 0


def test_labels_show_what_the_controller_sets(dock: HisemDock) -> None:
    dock.set_aoi_summary("Rectangle, 512 × 512 m (EPSG:32633)")
    assert dock.aoi_label.text() == "Rectangle, 512 × 512 m (EPSG:32633)"
    dock.set_estimate(250_000, 81)
    assert dock.estimate_label.text() == "0.25 km², 81 tiles"
    dock.set_backend_status("no backend at http://127.0.0.1:8765", False)
    assert dock.backend_status_label.text().startswith("no backend")
    assert dock.backend_status_label.property("ok") is False
    dock.set_backend_status("hisem 0.1.0, CPUExecutionProvider", True)
    assert dock.backend_status_label.property("ok") is True


def test_format_estimate() -> None:
    assert format_estimate(250_000, 81) == "0.25 km², 81 tiles"
    assert format_estimate(900, 1) == "900 m², 1 tile"
    assert format_estimate(12_345_678_900, 123_456) == "12,346 km², 123,456 tiles"


def test_settings_round_trip_through_qgssettings_and_the_dock(dock: HisemDock, tmp_path: Path) -> None:
    store = QgsSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    loaded = PluginSettings.load(store)
    assert loaded.backend_url == DEFAULT_URL and loaded.authcfg == ""
    loaded.backend_url = "https://gpu.example.org:8765"
    loaded.model = "hisem-base-levircc"
    loaded.beam = 7
    loaded.threshold = 0.4
    loaded.save(store)
    again = PluginSettings.load(store)
    assert again == loaded
    dock.apply_settings(again)
    dock.set_models(MODELS)
    assert dock.backend_url() == "https://gpu.example.org:8765" and dock.beam_spin.value() == 7
    assert dock.model_id() == "hisem-base-levircc"  # the last-used model, not the backend's default
    dock.threshold_spin.setValue(0.6)
    assert dock.update_settings(again).threshold == pytest.approx(0.6)


def test_hisem_command_path_round_trips_through_settings(dock: HisemDock, tmp_path: Path) -> None:
    from hisem_qgis.settings import PluginSettings

    settings = PluginSettings(hisem_path=str(tmp_path / "venv" / "bin" / "hisem"))
    dock.apply_settings(settings)
    assert dock.hisem_path() == settings.hisem_path
    dock.hisem_path_widget.setFilePath("/opt/hisem/bin/hisem")
    assert dock.update_settings(PluginSettings()).hisem_path == "/opt/hisem/bin/hisem"
