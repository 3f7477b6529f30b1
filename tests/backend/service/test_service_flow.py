"""The /v1 flow against the real server: submit, progress, result, cancel, concurrency, crashes."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from osgeo import ogr
from service_support import Server, start_server, submit, wait_for

from hisem.engine import OrtRunner
from hisem.pipeline import CaptionOptions, caption_changes

LONG_JOB = {"gsd": 0.1}  # the 256 m scene at 0.1 m: 2,116 tiles, tens of seconds on 2 cores


def _tiles(collection: dict[str, Any]) -> dict[int, tuple[bool, str]]:
    return {f["properties"]["tile_index"]: (f["properties"]["changed"], f["properties"]["caption"])
            for f in collection["features"] if f["properties"]["kind"] == "tile"}


def _expected(scene: Path, tiny_model: Path, tmp_path: Path, beam: int) -> tuple[dict[int, tuple[bool, str]], int]:
    """What `hisem caption` (the library call) gives on the same inputs.

    One ONNX Runtime thread, as each of the server's two workers has on 2 cores: the same sums in
    the same order, so that a near-tie between two words of the tiny model cannot flip.
    """
    out = tmp_path / "local.gpkg"
    runner = OrtRunner(tiny_model, threads=1)
    result = caption_changes(scene / "before.tif", scene / "after.tif", out,
                             CaptionOptions(model=str(tiny_model), beam=beam, runner=runner))
    ds = ogr.Open(str(out))
    tiles = {f["tile_index"]: (bool(f["changed"]), f["caption"]) for f in ds.GetLayerByName("tiles")}
    ds = None
    return tiles, result.changes


def test_health_and_models(server: Server, model_id: str) -> None:
    with server.client() as client:
        health = client.get("/v1/health").json()
        models = client.get("/v1/models").json()
    assert health["status"] == "ok" and health["version"]
    assert health["execution_provider"] == "CPUExecutionProvider"
    assert health["device"].startswith("CPU") and health["workers"] == 2 and not health["auth_required"]
    entry = next(m for m in models if m["id"] == model_id)
    assert entry["tile_size"] == 64 and entry["gsd_m"] == 0.5 and "path" not in entry


def test_whole_flow_matches_hisem_caption(server: Server, scene: Path, tiny_model: Path, model_id: str,
                                          tmp_path: Path) -> None:
    params = {"model": model_id, "beam": 2, "dates": {"before": "2019-05-01", "after": "2024-05-01"},
              "labels": {"before": "ortho 2019"}}
    with server.client() as client:
        created = submit(client, scene / "before.tif", scene / "after.tif", params)
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["state"] in ("queued", "running") and job["tiles_total"] == 81
        status = wait_for(client, job["id"])
        assert status["state"] == "done", status
        assert status["tiles_done"] == status["tiles_total"] == 81 and status["progress"] == 1.0
        response = client.get(status["result_url"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    collection = response.json()
    assert collection["type"] == "FeatureCollection"
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    tiles, changes = _expected(scene, tiny_model, tmp_path, beam=2)
    assert _tiles(collection) == tiles
    change_features = [f for f in collection["features"] if f["properties"]["kind"] == "change"]
    assert len(change_features) == changes == status["changes"]
    assert all(f["properties"]["area_m2"] > 0 and f["geometry"]["type"] == "MultiPolygon" for f in change_features)
    tile = next(f for f in collection["features"] if f["properties"]["kind"] == "tile")
    assert tile["geometry"]["type"] == "Polygon" and len(tile["properties"]["alternatives"]) == 1
    provenance = collection["provenance"]
    assert provenance["model"] == model_id and provenance["job_id"] == job["id"]
    assert provenance["dates"] == {"before": "2019-05-01", "after": "2024-05-01"}
    assert provenance["execution_provider"] == ["CPUExecutionProvider"]
    assert provenance["parameters"]["beam"] == 2
    assert "/" not in json.dumps(provenance["uploads"])  # client file names only, no server paths


def test_cancel_stops_within_a_batch_and_delete_forgets(server: Server, scene: Path, model_id: str) -> None:
    with server.client() as client:
        job = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id, **LONG_JOB}).json()
        running = wait_for(client, job["id"], ("running", "done"), min_done=1)
        assert running["state"] == "running" and running["eta_s"] is not None
        assert client.delete(f"/v1/jobs/{job['id']}").status_code == 200
        status = wait_for(client, job["id"], timeout=10)
        assert status["state"] == "cancelled" and status["tiles_done"] < status["tiles_total"]
        assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 409
        assert client.delete(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"  # finished: deleted
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_eight_concurrent_jobs_all_correct(server: Server, scene: Path, tiny_model: Path, model_id: str,
                                           tmp_path: Path) -> None:
    expected, changes = _expected(scene, tiny_model, tmp_path, beam=1)

    def one_client(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        with server.client() as client:
            job = submit(client, scene / "before.tif", scene / "after.tif",
                         {"model": model_id, "labels": {"client": str(i)}})
            assert job.status_code == 202, job.text
            status = wait_for(client, job.json()["id"])
            return status, client.get(f"/v1/jobs/{job.json()['id']}/result").json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_client, range(8)))
    assert [status["state"] for status, _ in results] == ["done"] * 8
    for i, (status, collection) in enumerate(results):
        assert _tiles(collection) == expected and status["changes"] == changes
        assert collection["provenance"]["labels"] == {"client": str(i)}


def test_dead_worker_fails_its_job_and_the_server_keeps_serving(tiny_model: Path, scene: Path, model_id: str,
                                                                tmp_path: Path) -> None:
    server = start_server(tmp_path, tiny_model.parent, "--workers", "1")
    try:
        with server.client() as client:
            job = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id, **LONG_JOB}).json()
            wait_for(client, job["id"], ("running",), min_done=1)
            (worker,) = server.worker_pids()
            os.kill(worker, signal.SIGKILL)  # what the OOM killer or a native crash does
            status = wait_for(client, job["id"], timeout=30)
            assert status["state"] == "failed" and "worker process" in status["error"]
            assert "SIGKILL" in status["error"]
            again = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id}).json()
            assert wait_for(client, again["id"])["state"] == "done"
            assert client.get("/v1/health").json()["status"] == "ok"
            assert server.worker_pids() != [worker]
    finally:
        assert server.stop() == 0, server.log.read_text()


def test_finished_jobs_survive_a_restart(tiny_model: Path, scene: Path, model_id: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    server = start_server(tmp_path, tiny_model.parent, "--jobs-dir", str(jobs))
    with server.client() as client:
        job = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id}).json()
        assert wait_for(client, job["id"])["state"] == "done"
        result = client.get(f"/v1/jobs/{job['id']}/result").json()
    assert server.stop() == 0
    server = start_server(tmp_path, tiny_model.parent, "--jobs-dir", str(jobs))
    try:
        with server.client() as client:
            assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "done"
            assert client.get(f"/v1/jobs/{job['id']}/result").json() == result
    finally:
        assert server.stop() == 0


def test_result_of_unknown_or_unfinished_job(server: Server) -> None:
    with server.client() as client:
        response = client.get("/v1/jobs/0123/result")
    assert response.status_code == 404 and "0123" in response.json()["detail"]
