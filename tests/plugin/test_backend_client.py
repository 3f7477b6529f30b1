"""The plugin's HTTP client and local-backend launcher against the real `hisem serve`."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qgis.core import QgsFeedback
from service_support import Server, free_port, start_server, submit

from hisem_qgis.backend import BackendClient, BackendError, LocalBackend, create_token_authcfg
from hisem_qgis.diagnostics import diagnostics_report
from hisem_qgis.metadata_info import plugin_version

LONG_JOB = {"gsd": 0.1}  # the 256 m scene at 0.1 m: thousands of tiles, long enough to cancel


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("serve"), tiny_model.parent, "--workers", "1")
    yield srv
    assert srv.stop() == 0, srv.log.read_text()


def wait_state(client: BackendClient, job_id: str, states: tuple[str, ...], timeout: float = 300,
               min_done: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.status(job_id)
        if status["state"] in states and (status["state"] != "running" or status["tiles_done"] >= min_done):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {status['state']} after {timeout} s")


def test_health_and_models(server: Server, model_id: str) -> None:
    client = BackendClient(server.url + "/")  # a trailing slash is forgiven
    health = client.health()
    assert health["status"] == "ok" and health["version"] and not health["auth_required"]
    assert health["execution_provider"] == "CPUExecutionProvider"
    models = client.models()
    entry = next(m for m in models if m["id"] == model_id)
    assert entry["tile_size"] == 64 and entry["gsd_m"] == 0.5


def test_whole_job_submit_poll_result(server: Server, scene: Path, model_id: str) -> None:
    client = BackendClient(server.url)
    params = {"model": model_id, "dates": {"before": "2019-05-01", "after": "2024-05-01"}}
    job = client.submit(scene / "before.tif", scene / "after.tif", params)
    assert job["state"] in ("queued", "running") and job["tiles_total"] == 81
    status = wait_state(client, job["id"], ("done", "failed", "cancelled"))
    assert status["state"] == "done", status
    collection = client.result(job["id"])
    assert collection["type"] == "FeatureCollection"
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    kinds = [f["properties"]["kind"] for f in collection["features"]]
    assert kinds.count("tile") == 81
    assert kinds.count("change") == status["changes"] > 0
    assert collection["provenance"]["dates"] == params["dates"]
    # The bytes went over the wire, not the paths.
    assert "/" not in json.dumps(collection["provenance"]["uploads"])


def test_diagnostics_report_names_versions_and_backend(server: Server, model_id: str) -> None:
    from osgeo import gdal
    from qgis.core import Qgis

    report = diagnostics_report(server.url, BackendClient(server.url))
    assert Qgis.QGIS_VERSION in report and gdal.VersionInfo("RELEASE_NAME") in report
    assert plugin_version() in report and sys.version.split()[0] in report
    assert any(line.startswith("Backend URL") and line.endswith(server.url) for line in report.splitlines())
    assert "CPUExecutionProvider" in report and model_id in report
    down = f"http://127.0.0.1:{free_port()}"
    report = diagnostics_report(down, None)
    assert f"error: no backend at {down}" in report and Qgis.QGIS_VERSION in report


def test_cancel_a_long_job(server: Server, scene: Path, model_id: str) -> None:
    client = BackendClient(server.url)
    job = client.submit(scene / "before.tif", scene / "after.tif", {"model": model_id, **LONG_JOB})
    running = wait_state(client, job["id"], ("running", "done", "failed"), min_done=1)
    assert running["state"] == "running", running
    client.cancel(job["id"])
    status = wait_state(client, job["id"], ("cancelled", "done", "failed"), timeout=60)
    assert status["state"] == "cancelled" and status["tiles_done"] < status["tiles_total"]
    with pytest.raises(BackendError) as err:
        client.result(job["id"])
    assert err.value.status == 409


def test_bad_input_gives_the_servers_detail(server: Server, scene: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a raster\n")
    with pytest.raises(BackendError) as err:
        BackendClient(server.url).submit(text, scene / "after.tif", {})
    with server.client() as http:
        expected = submit(http, text, scene / "after.tif", {})
    assert expected.status_code == 422
    assert err.value.status == 422
    assert err.value.detail == expected.json()["detail"] and err.value.detail


def test_unknown_param_is_refused_with_detail(server: Server, scene: Path) -> None:
    with pytest.raises(BackendError) as err:
        BackendClient(server.url).submit(scene / "before.tif", scene / "after.tif", {"colour": "red"})
    assert err.value.status in (400, 422) and "colour" in err.value.detail


def test_missing_chip_is_a_clear_error(server: Server, tmp_path: Path, scene: Path) -> None:
    with pytest.raises(BackendError, match="image chip not found"):
        BackendClient(server.url).submit(tmp_path / "gone.tif", scene / "after.tif", {})


def test_backend_down_is_a_clear_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(BackendError) as err:
        BackendClient(url).health()
    assert err.value.status is None
    assert err.value.detail.startswith(f"no backend at {url}: start it with `hisem serve`")


def test_not_a_url_is_refused() -> None:
    with pytest.raises(BackendError, match="not a backend URL"):
        BackendClient("127.0.0.1:8765")


def test_a_cancelled_feedback_aborts_the_request(server: Server) -> None:
    feedback = QgsFeedback()
    feedback.cancel()
    with pytest.raises(BackendError, match="request cancelled"):
        BackendClient(server.url).models(feedback=feedback)


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a stuck backend."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_cancel_aborts_a_request_in_flight(silent_server: str) -> None:
    # As the task manager does: the request blocks one thread, the cancel comes from another.
    feedback = QgsFeedback()
    canceller = threading.Timer(0.3, feedback.cancel)
    canceller.start()
    try:
        with pytest.raises(BackendError, match="request cancelled"):
            BackendClient(silent_server, timeout_ms=120_000).models(feedback=feedback)
    finally:
        canceller.join()


def test_a_stuck_backend_times_out_clearly(silent_server: str) -> None:
    with pytest.raises(BackendError) as err:
        BackendClient(silent_server, timeout_ms=500).health()
    assert err.value.status is None
    assert err.value.detail.startswith(f"the backend at {silent_server} did not answer within 0.5 s")


def test_token_from_the_auth_database(tiny_model: Path, tmp_path: Path, auth_manager: Any) -> None:
    token = "s3cret-token-for-tests"
    server = start_server(tmp_path, tiny_model.parent, "--workers", "1", token=token)
    good = create_token_authcfg(token, "hisem test good")
    wrong = create_token_authcfg("not-the-token", "hisem test wrong")
    try:
        # The secret is in the encrypted auth DB, not in the configuration's public fields.
        assert token not in json.dumps(auth_manager.availableAuthMethodConfigs()[good].configMap())
        assert BackendClient(server.url).health()["auth_required"]
        assert BackendClient(server.url, authcfg=good).models()
        for client in (BackendClient(server.url, authcfg=wrong), BackendClient(server.url)):
            with pytest.raises(BackendError) as err:
                client.models()
            assert err.value.status == 401
            assert err.value.detail.startswith(f"the backend at {server.url} refused the access token")
    finally:
        auth_manager.removeAuthenticationConfig(good)
        auth_manager.removeAuthenticationConfig(wrong)
        assert server.stop() == 0, server.log.read_text()


def test_unknown_authcfg_is_a_clear_error(auth_manager: Any) -> None:
    with pytest.raises(BackendError, match="authentication configuration 'nope123' is missing"):
        BackendClient("http://127.0.0.1:8765", authcfg="nope123")


def test_local_backend_starts_answers_and_stops(tiny_model: Path, tmp_path: Path, model_id: str) -> None:
    hisem = Path(sys.executable).parent / "hisem"
    port = free_port()
    backend = LocalBackend()
    try:
        health = backend.start(str(hisem), port, models_dir=str(tiny_model.parent), timeout_s=120,
                               extra_args=["--workers", "1", "--jobs-dir", str(tmp_path / "jobs")],
                               log_dir=str(tmp_path))
        assert health["status"] == "ok" and backend.running()
        assert model_id in [m["id"] for m in BackendClient(f"http://127.0.0.1:{port}").models()]
        assert backend.log_path is not None and backend.log_path.parent == tmp_path
        # A backend already on that port is used, not started twice (and not ours to stop).
        other = LocalBackend()
        assert other.start(str(hisem), port)["version"] == health["version"] and not other.running()
    finally:
        backend.stop()
    assert not backend.running()
    with pytest.raises(BackendError, match="no backend at"):
        BackendClient(f"http://127.0.0.1:{port}").health()


def test_local_backend_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot run the HiSem backend"):
        LocalBackend().start(str(tmp_path / "no-hisem"), free_port(), log_dir=str(tmp_path))


def test_local_backend_that_exits_shows_its_log(tmp_path: Path) -> None:
    hisem = Path(sys.executable).parent / "hisem"
    # An unknown flag: the real command exits at once with its usage on stderr.
    with pytest.raises(BackendError) as err:
        LocalBackend().start(str(hisem), free_port(), extra_args=["--no-such-flag"], log_dir=str(tmp_path),
                             timeout_s=120)
    assert "exited with code 2" in err.value.detail and "--no-such-flag" in err.value.detail
