"""The caption task end to end in the real QGIS against the real backend; failures change nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsGeometry, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication
from service_support import Server, free_port, start_server, wait_for

from hisem_qgis.backend import BackendClient, create_token_authcfg
from hisem_qgis.task import CaptionTask
from hisem_qgis.workflow import CaptionRequest, LayerSource

TOKEN = "plugin-test-token"


@pytest.fixture(scope="module")
def backend(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    server = start_server(tmp_path_factory.mktemp("plugin-serve"), tiny_model.parent, token=TOKEN)
    yield server
    server.stop()


@pytest.fixture()
def authcfg(auth_manager) -> str:
    return create_token_authcfg(TOKEN, name="HiSem test backend")


def _request(scene: Path, tiny_model: Path, out: Path, url: str, authcfg: str | None, gsd: float = 0.5
             ) -> CaptionRequest:
    before = QgsRasterLayer(str(scene / "before.tif"), "before 2019")
    after = QgsRasterLayer(str(scene / "after.tif"), "after 2024")
    assert before.isValid() and after.isValid()
    model_id = json.loads((tiny_model / "model.json").read_text())["model_id"]
    return CaptionRequest(
        before=LayerSource.of(before), after=LayerSource.of(after), aoi=QgsGeometry.fromRect(before.extent()),
        aoi_crs=QgsCoordinateReferenceSystem("EPSG:32633"), gsd=gsd, output=out,
        client=BackendClient(url, authcfg), params={"model": model_id, "dates": {"before": "2019", "after": "2024"}})


def _run(task: CaptionTask, outcome: dict, timeout: float = 300.0, cancel_at: float | None = None) -> None:
    QgsApplication.taskManager().addTask(task)
    deadline = time.monotonic() + timeout
    cancelled = False
    while "done" not in outcome and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        if cancel_at is not None and not cancelled and task.progress() >= cancel_at:
            task.cancel()
            cancelled = True
        time.sleep(0.02)
    assert "done" in outcome, "the task did not finish"


def _callbacks(outcome: dict):
    def success(result) -> None:
        outcome.update(done=True, ok=True, result=result)

    def failure(message: str, cancelled: bool) -> None:
        outcome.update(done=True, ok=False, message=message, cancelled=cancelled)

    return success, failure


def test_task_adds_styled_layers_from_the_backend(backend: Server, authcfg: str, scene: Path, tiny_model: Path,
                                                  tmp_path: Path, qgis_new_project) -> None:
    project = QgsProject.instance()
    out = tmp_path / "changes.gpkg"
    outcome: dict = {}
    task = CaptionTask(_request(scene, tiny_model, out, backend.url, authcfg), "HiSem 2019 → 2024",
                       *_callbacks(outcome), project=project)
    _run(task, outcome)
    assert outcome["ok"], outcome
    assert out.is_file() and outcome["result"].tiles == 81
    group = project.layerTreeRoot().findGroup("HiSem 2019 → 2024")
    assert group is not None
    layers = {node.layer().name(): node.layer() for node in group.findLayers()}
    assert len(layers) == 2 and all(layer.isValid() for layer in layers.values())
    counts = sorted(layer.featureCount() for layer in layers.values())
    assert counts[1] == 81 and counts[0] == outcome["result"].changes


def test_cancel_reaches_the_backend_and_adds_nothing(backend: Server, authcfg: str, scene: Path, tiny_model: Path,
                                                     tmp_path: Path, qgis_new_project) -> None:
    project = QgsProject.instance()
    out = tmp_path / "changes.gpkg"
    outcome: dict = {}
    task = CaptionTask(_request(scene, tiny_model, out, backend.url, authcfg, gsd=0.1), "cancelled run",
                       *_callbacks(outcome), project=project)
    _run(task, outcome, cancel_at=32.0)  # past pairing (30 %): the job is on the backend
    assert not outcome["ok"] and outcome["cancelled"], outcome
    assert not out.exists() and project.layerTreeRoot().findGroup("cancelled run") is None
    assert len(project.mapLayers()) == 0
    with backend.client() as client:  # the worker stops at its next batch
        states = [wait_for(client, job["id"], timeout=30)["state"] for job in client.get("/v1/jobs").json()]
    assert "cancelled" in states and "running" not in states


@pytest.mark.parametrize("problem", ["backend down", "wrong token"])
def test_failures_say_why_and_change_nothing(problem: str, backend: Server, scene: Path, tiny_model: Path,
                                             tmp_path: Path, qgis_new_project, auth_manager) -> None:
    project = QgsProject.instance()
    out = tmp_path / "changes.gpkg"
    if problem == "backend down":
        url, cfg, words = f"http://127.0.0.1:{free_port()}", None, "no backend at"
    else:
        url, cfg, words = backend.url, create_token_authcfg("not-the-token", name="wrong"), "token"
    outcome: dict = {}
    task = CaptionTask(_request(scene, tiny_model, out, url, cfg), "failed run", *_callbacks(outcome),
                       project=project)
    _run(task, outcome, timeout=60)
    assert not outcome["ok"] and not outcome["cancelled"]
    assert words in outcome["message"], outcome["message"]
    assert not out.exists() and len(project.mapLayers()) == 0
