"""Issue 14 against the real server: hostile files, browsers, careless parameters, dead workers, shutdowns.

Each test starts from what a fuzzing and fault probe of `hisem serve` found; every file is made here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from geo_helpers import write_tif
from hostile_files import LOCAL_CS, MARS_UTM, damage_block, relabel_crs, write_block_bomb
from osgeo import gdal
from service_support import Server, start_server, submit, wait_for

from hisem.service.workers import _run

TOKEN = "hardening token"
LONG_JOB = {"gsd": 0.1}  # 2,116 tiles: tens of seconds


@pytest.fixture(scope="module")
def tight(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server as a shared GPU box runs it: a token, a small tile cap, one web app and one host name allowed."""
    srv = start_server(tmp_path_factory.mktemp("tight"), tiny_model.parent, "--workers", "1", "--max-tiles", "50",
                       "--allow-origin", "https://app.example", "--allow-host", "hisem.lab.example", token=TOKEN)
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


@pytest.fixture(scope="module")
def files(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    after = scene / "after.tif"
    tiled = tmp / "tiled.tif"
    gdal.Translate(str(tiled), str(after), creationOptions=["TILED=YES", "BLOCKXSIZE=128", "BLOCKYSIZE=128",
                                                            "COMPRESS=DEFLATE"])
    coarse = tmp / "coarse.tif"
    gdal.Translate(str(coarse), str(after), xRes=2.0, yRes=2.0)
    gray = tmp / "gray.tif"
    gdal.Translate(str(gray), str(after), bandList=[1])
    x0, _, _, y0, _, _ = gdal.Open(str(after)).GetGeoTransform()
    return {
        "bomb": write_block_bomb(tmp / "bomb.tif", origin=(x0, y0)),
        "local_cs": relabel_crs(after, tmp / "local.tif", LOCAL_CS),
        "mars": relabel_crs(after, tmp / "mars.tif", MARS_UTM),
        "damaged": damage_block(Path(shutil.copyfile(tiled, tmp / "damaged.tif")), 1, 1),
        "coarse": coarse, "gray": gray,
        "all_nodata": write_tif(tmp / "nodata.tif", np.zeros((3, 512, 512), np.uint8), origin=(x0, y0), gsd=0.5,
                                nodata=0),
    }


def _refused(response: Any, status: int, *words: str, cap: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert all(w in body["detail"] for w in words), body
    assert body.get("cap") == cap, body
    return body


# -- 1. decompression bombs ---------------------------------------------------------------------


def test_bomb_is_refused_from_its_header_and_costs_the_api_nothing(server: Server, scene: Path, model_id: str,
                                                                   files: dict[str, Path]) -> None:
    before_mb = server.peak_rss_mb()["server"]

    def one(_: int) -> Any:
        with server.client(timeout=600) as client:  # four checks, two at a time, on a busy machine
            return submit(client, files["bomb"], scene / "after.tif", {"model": model_id})

    with ThreadPoolExecutor(4) as pool:
        for response in pool.map(one, range(4)):
            body = _refused(response, 413, "before: one block of its pixels is 12288 x 12288",
                            "hisem serve --max-block-mb", cap="max_block_mb")
            assert body["limit"] == 64
    assert server.peak_rss_mb()["server"] - before_mb < 50  # it was +1 GB per bomb, decoded in this process


def test_a_decode_that_exhausts_the_check_leaves_the_api_up(tiny_model: Path, scene: Path, model_id: str,
                                                            files: dict[str, Path], tmp_path: Path) -> None:
    """With the block cap raised past the bomb, the decode happens, in the check's child, which runs out."""
    server = start_server(tmp_path, tiny_model.parent, "--max-block-mb", "1024", "--check-memory-mb", "800")
    try:
        before_mb = server.peak_rss_mb()["server"]
        with server.client() as client:
            response = submit(client, files["bomb"], scene / "after.tif", {"model": model_id})
            assert response.status_code in (413, 422), response.text
            assert "before" in response.json()["detail"] and str(tmp_path) not in response.text
            assert client.get("/v1/health").json()["status"] == "ok"
        assert server.peak_rss_mb()["server"] - before_mb < 50
    finally:
        assert server.stop() == 0, server.log.read_text()


# -- 2 and 8. bad CRSs, AOIs, bands and pixels: 4xx at submission ---------------------------------


CASES = [
    # (name, before, after, params, status, words)
    ("engineering crs", None, "local_cs", {}, 422, "after: 'site grid' is an engineering (local) CRS"),
    ("crs of mars", "mars", None, {}, 422, "before: the CRS"),
    ("aoi of 1e308", None, None, {"aoi": {"bbox": [-1e308, -1e308, 1e308, 1e308], "crs": "EPSG:4326"}}, 422,
     "outside the range of its CRS"),
    ("aoi on mars", None, None, {"aoi": {"wkt": "POLYGON ((0 0,1 0,1 1,0 0))", "crs": MARS_UTM}}, 422,
     "cannot be transformed to WGS 84"),
    ("missing band", None, None, {"bands": [1, 2, 5]}, 422, "band 5 does not exist"),
    ("one band", "gray", "gray", {}, 422, "e.g. 1,1,1"),
    ("all nodata", None, "all_nodata", {}, 422, "after: every pixel over the working extent is nodata"),
    ("damaged block", "damaged", None, {}, 422, "before: its pixels cannot be read (a damaged block?)"),
]


@pytest.mark.parametrize(("name", "before", "after", "params", "status", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_inputs_are_refused_at_submission(server: Server, scene: Path, model_id: str, files: dict[str, Path],
                                              name: str, before: str | None, after: str | None, params: dict,
                                              status: int, words: str) -> None:
    with server.client() as client:
        response = submit(client, files[before] if before else scene / "before.tif",
                          files[after] if after else scene / "after.tif", {"model": model_id, **params})
    _refused(response, status, words)


def test_the_band_suggestion_is_accepted(server: Server, model_id: str, files: dict[str, Path]) -> None:
    with server.client() as client:
        response = submit(client, files["gray"], files["gray"], {"model": model_id, "bands": [1, 1, 1]})
        assert response.status_code == 202, response.text
        client.delete(f"/v1/jobs/{response.json()['id']}")


# -- 3. no server path in any answer --------------------------------------------------------------


def test_results_name_inputs_by_role_and_upload_name(server: Server, scene: Path, model_id: str,
                                                     files: dict[str, Path]) -> None:
    with server.client() as client:
        created = submit(client, scene / "before.tif", files["coarse"], {"model": model_id})
        assert created.status_code == 202, created.text
        status = wait_for(client, created.json()["id"])
        assert status["state"] == "done", status
        assert any("native GSD 2 m is upsampled" in w and w.startswith("after:") for w in status["warnings"])
        result = client.get(status["result_url"]).json()
    inputs = result["provenance"]["inputs"]
    assert [(i["role"], i["name"]) for i in inputs] == [("before", "before.tif"), ("after", "after.tif")]
    assert all("path" not in i and len(i["sha256"]) == 64 for i in inputs)
    assert str(server.log.parent) not in json.dumps(result) + json.dumps(status)


class _Pipe:
    """The worker's pipe end, for calling its job function directly (fault injection: a damaged file)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)


def test_worker_errors_are_worded_and_path_free(scene: Path, tiny_model: Path, model_id: str,
                                                files: dict[str, Path], tmp_path: Path) -> None:
    job_dir = tmp_path / "jobs" / "0123"
    job_dir.mkdir(parents=True)
    (job_dir / "before.tif").write_bytes(files["damaged"].read_bytes())
    (job_dir / "after.tif").write_bytes((scene / "after.tif").read_bytes())
    spec = {"id": "0123", "dir": str(job_dir), "before": str(job_dir / "before.tif"),
            "after": str(job_dir / "after.tif"), "provenance": {}, "limits": {},
            "options": {"model": str(tiny_model), "max_tiles": 1000}}
    kind, message = _run(spec, {}, _Pipe(), threading.Event(), 1)  # type: ignore[arg-type]
    assert kind == "failed" and "internal error" not in message
    assert message.startswith("GDAL could not read or write the rasters of this job: before, band 1"), message
    assert str(tmp_path) not in message


# -- 4 and 10. the token comes first, and guards the documents too ---------------------------------


def _raw(server: Server, request: bytes, timeout: float = 15.0) -> tuple[bytes, dict[str, Any]]:
    """Send ``request`` as is and nothing more; the server's status line and JSON body (it closes)."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


def test_token_is_checked_before_the_body_is_read(tight: Server) -> None:
    port = urlsplit(tight.url).port
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {100 << 20}\r\n\r\n").encode()
    part = b'--b\r\nContent-Disposition: form-data; name="before"; filename="a.tif"\r\n\r\n' + b"x" * 65536
    t0 = time.monotonic()
    status, body = _raw(tight, head + part)  # 64 KB of a declared 100 MB upload: the rest never comes
    assert status.startswith(b"HTTP/1.1 401") and "token" in body["detail"], (status, body)
    assert time.monotonic() - t0 < 10


def test_only_health_answers_without_the_token(tight: Server) -> None:
    with tight.client(token=None) as anonymous:
        assert anonymous.get("/v1/health").status_code == 200
        for path in ("/openapi.json", "/docs", "/redoc", "/v1/models"):
            assert anonymous.get(path).status_code == 401, path
    with tight.client() as client:
        assert client.get("/openapi.json").json()["info"]["title"] == "HiSem backend"


def test_options_and_405_list_every_method(server: Server) -> None:
    with server.client() as client:
        for path, methods in (("/v1/jobs", {"GET", "POST"}), ("/v1/jobs/0123", {"GET", "DELETE"})):
            response = client.options(path)
            assert response.status_code == 204
            assert methods | {"OPTIONS"} <= set(response.headers["allow"].split(", ")), response.headers
        response = client.put("/v1/jobs")
        assert response.status_code == 405 and {"GET", "POST"} <= set(response.headers["allow"].split(", "))


def test_missing_result_file_is_410(server: Server, scene: Path, model_id: str) -> None:
    with server.client() as client:
        job = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id}).json()
        assert wait_for(client, job["id"])["state"] == "done"
        (result,) = server.log.parent.glob(f"jobs-*/{job['id']}/result.geojson")
        result.unlink()
        _refused(client.get(f"/v1/jobs/{job['id']}/result"), 410, "submit the job again")


# -- 5. browsers: Host and Origin -----------------------------------------------------------------


def test_foreign_host_and_origin_are_refused(server: Server, scene: Path, model_id: str) -> None:
    port = urlsplit(server.url).port
    with server.client() as client:
        _refused(client.get("/v1/health", headers={"Host": f"evil.example:{port}"}), 403, "Host")
        _refused(client.get("/v1/jobs", headers={"Host": "evil.example"}), 403, "hisem serve --allow-host")
        files = {"before": ("a.tif", (scene / "before.tif").read_bytes(), "image/tiff"),
                 "after": ("b.tif", (scene / "after.tif").read_bytes(), "image/tiff")}
        csrf = client.post("/v1/jobs", files=files, data={"params": json.dumps({"model": model_id})},
                           headers={"Origin": "https://evil.example"})
        _refused(csrf, 403, "Origin 'https://evil.example' is not allowed", "--allow-origin")
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert client.get("/v1/health", headers={"Host": host}).status_code == 200, host
        own = client.get("/v1/jobs", headers={"Origin": server.url})  # the server's own pages (/docs)
        assert own.status_code == 200


def test_configured_names_and_origins_are_allowed(tight: Server) -> None:
    with tight.client() as client:
        assert client.get("/v1/models", headers={"Host": "hisem.lab.example:8765"}).status_code == 200
        _refused(client.get("/v1/models", headers={"Host": "other.example"}), 403, "Host")
        allowed = client.get("/v1/models", headers={"Origin": "https://app.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        preflight = client.options("/v1/jobs", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
        _refused(client.get("/v1/models", headers={"Origin": "https://evil.example"}), 403, "Origin")


# -- 6. server-side caps ----------------------------------------------------------------------------


def test_caps_are_reported_and_named(tight: Server, scene: Path, model_id: str) -> None:
    with tight.client() as client:
        caps = client.get("/v1/health").json()["caps"]
        assert caps["max_tiles"] == 50 and caps["max_tile_megapixels"] == 16 and caps["max_beam"] == 10

        def post(params: dict) -> Any:
            return submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id, **params})

        body = _refused(post({}), 413, "81 tiles", "cap of 50 tiles per job (hisem serve --max-tiles)",
                        cap="max_tiles")
        assert body["limit"] == 50
        _refused(post({"max_tiles": 10}), 422, "more than the limit of 10", "params.max_tiles")
        _refused(post({"gsd": 0.005}), 422, "params.gsd = 0.005: finer than", "--min-gsd-m", cap="min_gsd_m")
        _refused(post({"gsd": 150}), 422, "params.gsd = 150: coarser than", "--max-gsd-m", cap="max_gsd_m")
        # 64 px tiles at 50 m over a 0.5 m image: 6,400² source pixels each (the sparse-raster case: 99 s a tile)
        _refused(post({"gsd": 50}), 413, "would read 41 megapixels", "--max-tile-megapixels",
                 cap="max_tile_megapixels")


def test_upload_limit_names_its_cap_and_coarser(server: Server) -> None:
    port = urlsplit(server.url).port
    status, body = _raw(server, (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: "
                                 f"{600 << 20}\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n").encode())
    assert status.startswith(b"HTTP/1.1 413"), status
    assert "coarser GSD" in body["detail"] and "lower GSD" not in body["detail"]
    assert (body["cap"], body["limit"]) == ("max_upload_mb", 512)


# -- 11. wording and strict types -----------------------------------------------------------------


WORDING = [
    ('{"gsd": NaN}', "params.gsd: Input should be a finite number"),
    ('{"beam": true}', "params.beam: Input should be a valid integer"),
    ('{"beam": "3"}', "params.beam: Input should be a valid integer"),
    ('{"beam": 11}', "params.beam: Input should be less than or equal to 10"),
    ('{"tile_size": 128}', "params.tile_size = 128: the model takes tiles of 64 px"),
    ('{"overlap": 40}', "params.overlap = 40: must be within [0, 32)"),
]


@pytest.mark.parametrize(("params", "words"), WORDING, ids=[w[0] for w in WORDING])
def test_params_errors_name_params_fields(server: Server, scene: Path, model_id: str, params: str,
                                         words: str) -> None:
    with server.client() as client:
        # json.dumps writes NaN as the bare NaN that Python (and many clients) send
        response = submit(client, scene / "before.tif", scene / "after.tif",
                          json.dumps({"model": model_id, **json.loads(params)}))
    body = _refused(response, 422, words)
    assert "--" not in body["detail"], body


# -- 7. a worker that dies idle ---------------------------------------------------------------------


def test_a_worker_that_dies_idle_is_replaced_and_reported(tiny_model: Path, scene: Path, model_id: str,
                                                          tmp_path: Path) -> None:
    server = start_server(tmp_path, tiny_model.parent, "--workers", "1")
    try:
        (worker,) = server.worker_pids()
        os.kill(worker, signal.SIGKILL)
        with server.client() as client:
            deadline = time.monotonic() + 120
            health = client.get("/v1/health").json()
            while not (health["worker_restarts"] == 1 and health["workers_alive"] == 1):
                assert time.monotonic() < deadline, health
                time.sleep(0.2)
                health = client.get("/v1/health").json()
            assert health["status"] == "ok"
            assert "worker 0 died while idle (killed by SIGKILL)" in health["last_worker_failure"]
            job = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id}).json()
            assert wait_for(client, job["id"])["state"] == "done"  # it used to fail without having run
        assert server.worker_pids() != [worker]
    finally:
        assert server.stop() == 0, server.log.read_text()


# -- 9. a graceful shutdown fails what it interrupts, with the reason ------------------------------


def test_shutdown_fails_running_and_queued_jobs_with_a_reason(tiny_model: Path, scene: Path, model_id: str,
                                                             tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    server = start_server(tmp_path, tiny_model.parent, "--jobs-dir", str(jobs), "--workers", "1")
    with server.client() as client:
        running = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id, **LONG_JOB}).json()
        queued = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id}).json()
        wait_for(client, running["id"], ("running",), min_done=1)
    assert server.stop() == 0, server.log.read_text()
    server = start_server(tmp_path, tiny_model.parent, "--jobs-dir", str(jobs))
    try:
        with server.client() as client:
            first, second = (client.get(f"/v1/jobs/{j['id']}").json() for j in (running, queued))
        assert (first["state"], first["error"]) == ("failed", "the server shut down while this job was running; "
                                                              "submit it again")
        assert (second["state"], second["error"]) == ("failed", "the server shut down before this job ran; "
                                                                "submit it again")
    finally:
        assert server.stop() == 0
