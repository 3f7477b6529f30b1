"""Bad input gets a 4xx whose detail names the problem, never a 500; the host, token and size rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from geo_helpers import write_tif
from osgeo import gdal
from service_support import Server, free_port, start_server, submit, wait_for

from hisem.commands.serve import openapi_document
from hisem.service.settings import ServiceSettings, is_loopback

REPO = Path(__file__).resolve().parents[3]


def _geotiff(path: Path, epsg: int | None, origin: tuple[float, float], size: int = 64) -> Path:
    return write_tif(path, np.full((3, size, size), 90, np.uint8), epsg=epsg, origin=origin, gsd=0.5)


@pytest.fixture(scope="module")
def bad_files(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "text.tif").write_text("not a raster at all")
    (tmp / "empty.tif").write_bytes(b"")
    (tmp / "truncated.tif").write_bytes((scene / "before.tif").read_bytes()[:4000])
    gdal.Translate(str(tmp / "scene.vrt"), str(scene / "before.tif"), format="VRT")
    return {
        "text": tmp / "text.tif", "empty": tmp / "empty.tif", "truncated": tmp / "truncated.tif",
        "vrt": tmp / "scene.vrt",
        "no_crs": _geotiff(tmp / "nocrs.tif", None, (500000, 5540000)),
        "elsewhere": _geotiff(tmp / "elsewhere.tif", 32633, (300000, 5000000)),
    }


CASES = [
    # (name, before, after, params, status, words the detail must contain)
    ("after part missing", "scene", None, {}, 400, "after: field required"),
    ("params not JSON", "scene", "scene", "{beam: 2", 422, "params: not valid json"),
    ("params not an object", "scene", "scene", "[1, 2]", 422, "params: expected a json object"),
    ("unknown field", "scene", "scene", {"path": "/etc/passwd"}, 422, "params.path: unknown field"),
    ("beam out of range", "scene", "scene", {"beam": 0}, 422, "params.beam"),
    ("threshold type", "scene", "scene", {"threshold": "high"}, 422, "params.threshold"),
    ("model as a path", "scene", "scene", {"model": "/tmp/models/x"}, 422, "params.model"),
    ("unknown model", "scene", "scene", {"model": "no-such-model"}, 422, "no model 'no-such-model'"),
    ("crs as a path", "scene", "scene", {"aoi": {"bbox": [0, 0, 1, 1], "crs": "/etc/proj.db"}}, 422,
     "params.aoi.crs"),
    ("aoi both shapes", "scene", "scene", {"aoi": {"bbox": [0, 0, 1, 1], "wkt": "POINT (0 0)", "crs": "EPSG:4326"}},
     422, "exactly one of wkt and bbox"),
    ("aoi as a file name", "scene", "scene", {"aoi": {"wkt": "/etc/passwd", "crs": "EPSG:4326"}}, 422, "aoi"),
    ("aoi elsewhere", "scene", "scene", {"aoi": {"bbox": [2.0, 48.0, 2.1, 48.1], "crs": "EPSG:4326"}}, 422,
     "does not overlap"),
    ("too many tiles", "scene", "scene", {"max_tiles": 10}, 422, "more than the limit of 10"),
    ("not a raster", "text", "scene", {}, 422, "before: not a geotiff"),
    ("empty upload", "scene", "empty", {}, 422, "after: the upload is empty"),
    ("truncated geotiff", "truncated", "scene", {}, 422, "truncated"),
    ("vrt refused", "vrt", "scene", {}, 422, "before: not a geotiff"),
    ("no crs", "no_crs", "scene", {}, 422, "no crs"),
    ("rasters apart", "scene", "elsewhere", {}, 422, "overlap"),
]


@pytest.mark.parametrize(("name", "before", "after", "params", "status", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(server: Server, scene: Path, bad_files: dict[str, Path], model_id: str,
                                    name: str, before: str, after: str | None, params: dict | str, status: int,
                                    words: str) -> None:
    files = {"scene": None, **bad_files}
    paths = {"before": files[before] or scene / "before.tif", "after": (files[after] or scene / "after.tif")
             if after is not None else None}
    if isinstance(params, dict) and "model" not in params:
        params = {**params, "model": model_id}
    multipart = {part: (path.name, path.read_bytes(), "image/tiff") for part, path in paths.items() if path}
    data = {"params": params if isinstance(params, str) else json.dumps(params)}
    with server.client() as client:
        response = client.post("/v1/jobs", files=multipart, data=data)
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and words in detail.lower(), detail
        assert str(server.log.parent) not in detail  # no server-side path in an answer
        assert client.get("/v1/health").status_code == 200


def test_not_multipart_and_jobs_left_behind(server: Server) -> None:
    with server.client() as client:
        response = client.post("/v1/jobs", json={"before": "/data/a.tif", "after": "/data/b.tif"})
        assert response.status_code == 400 and "before: field required" in response.json()["detail"].lower()
        states = {job["state"] for job in client.get("/v1/jobs").json()}
    assert states <= {"queued", "running", "done", "cancelled", "failed"}  # refused requests made no job


def test_token_upload_limit_and_full_queue(tiny_model: Path, scene: Path, model_id: str, tmp_path: Path) -> None:
    token = "correct horse battery staple"
    server = start_server(tmp_path, tiny_model.parent, "--max-upload-mb", "2", "--max-queue", "1",
                          "--workers", "1", token=token)
    try:
        with server.client(token=None) as anonymous:
            health = anonymous.get("/v1/health")
            assert health.status_code == 200 and health.json()["auth_required"] is True
            for method, path in (("GET", "/v1/models"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/x"),
                                 ("DELETE", "/v1/jobs/x"), ("POST", "/v1/jobs")):
                response = anonymous.request(method, path)
                assert response.status_code == 401, (method, path, response.text)
                assert "token" in response.json()["detail"]
        with server.client(token="wrong") as wrong:
            assert wrong.get("/v1/models").status_code == 401
        with server.client() as client:
            assert client.get("/v1/models").status_code == 200
            big = {"before": ("a.tif", b"\0" * (3 << 20), "image/tiff"), "after": ("b.tif", b"\0", "image/tiff")}
            response = client.post("/v1/jobs", files=big)
            assert response.status_code == 413 and "at most 2 MiB" in response.json()["detail"]
            first = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id, "gsd": 0.1})
            assert first.status_code == 202
            second = submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id})
            assert second.status_code == 429 and "queue is full" in second.json()["detail"]
            client.delete(f"/v1/jobs/{first.json()['id']}")
            assert wait_for(client, first.json()["id"], timeout=30)["state"] == "cancelled"
            assert submit(client, scene / "before.tif", scene / "after.tif", {"model": model_id}).status_code == 202
    finally:
        assert server.stop() == 0, server.log.read_text()


def test_other_hosts_need_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    with pytest.raises(ValueError, match="without a token"):
        ServiceSettings(host="0.0.0.0").check()
    ServiceSettings(host="0.0.0.0", token="t").check()
    done = subprocess.run([sys.executable, "-m", "hisem", "serve", "--host", "0.0.0.0", "--port",
                           str(free_port())], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in __import__("os").environ.items() if k != "HISEM_TOKEN"})
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in done.stderr


def test_openapi_document_is_current() -> None:
    on_disk = json.loads((REPO / "docs" / "openapi.json").read_text())
    assert on_disk == openapi_document(), "docs/openapi.json is stale: run `make openapi`"


def test_schemathesis_finds_no_server_error(server: Server, model_id: str, tmp_path: Path) -> None:
    """A bounded property-based run of the whole contract: any 5xx (or a crash) fails it.

    The stateful phase follows the OpenAPI links of created jobs (status, result, delete); the hooks
    give half of the generated jobs a real one-tile GeoTIFF, so that some are created at all.
    """
    tif = write_tif(tmp_path / "one-tile.tif", np.full((3, 64, 64), 90, np.uint8), origin=(500_000, 5_000_000),
                    gsd=0.5)
    log_start = server.log.stat().st_size
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "HISEM_TEST_GEOTIFF": str(tif),
           "HISEM_TEST_MODEL": model_id,
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", str(REPO / "docs" / "openapi.json"),
         "--url", server.url, "--checks", "not_a_server_error", "--max-examples", "40", "--seed", "1",
         "--phases", "examples,coverage,fuzzing,stateful", "--no-shrink", "--workers", "1",
         "--generation-database", "none", "--request-timeout", "60", "--no-color"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    with server.log.open() as log:
        log.seek(log_start)
        requests = log.read()
    # The lifecycle was walked: jobs created, then their status, result and deletion asked for by id.
    job = r"/v1/jobs/[0-9a-f]{32}"
    for pattern in (r'"POST /v1/jobs HTTP/1.1" 202', rf'"GET {job} HTTP/1.1" 200', rf'"GET {job}/result HTTP/1.1"',
                    rf'"DELETE {job} HTTP/1.1" 200'):
        assert re.search(pattern, requests), pattern
    with server.client() as client:
        assert client.get("/v1/health").status_code == 200
