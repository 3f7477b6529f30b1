"""Talk to a HiSem backend over its /v1 HTTP API, and start a local one for the user.

Requests go through ``QgsBlockingNetworkRequest`` so that they honour QGIS's proxy and SSL settings
and can run inside a ``QgsTask`` thread; a ``QgsFeedback`` aborts the request in flight, so that a
cancelled task does not wait for a slow upload or answer.

The access token: QGIS 3.22 has no authentication method that sends ``Authorization: Bearer``
(the "APIHeader" method arrived in 3.26; "EsriToken" sends ``X-Esri-Authorization``). The token is
therefore kept, encrypted, in a "Basic" authentication configuration (its password field; see
``create_token_authcfg``), which the user picks with the usual QGIS selector, and the client reads it
and sends ``Authorization: Bearer TOKEN`` itself. A configuration of any other method (APIHeader on
newer QGIS, OAuth2, ...) is applied by QGIS itself through ``setAuthCfg``/``updateNetworkRequest``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qgis.core import (
    QgsApplication,
    QgsAuthMethodConfig,
    QgsBlockingNetworkRequest,
    QgsFeedback,
)
from qgis.PyQt.QtCore import QByteArray, QTemporaryFile, QUrl
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest

API = "/v1"
CHUNK = 4 * 1024 * 1024
# Authentication methods whose secret the client sends as a Bearer token itself, and the field holding it.
TOKEN_FIELDS = {"Basic": ("password", "username"), "EsriToken": ("token",)}


class BackendError(Exception):
    """A request the backend refused or could not answer: ``detail`` is one sentence for the message bar."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail if status is None else f"{detail} (HTTP {status})")
        self.status = status
        self.detail = detail


def create_token_authcfg(token: str, name: str = "HiSem backend", authcfg: str | None = None) -> str:
    """Store ``token`` encrypted in QGIS's authentication database; returns the configuration id.

    A "Basic" configuration with the token as its password: the one 3.22 method whose secret the
    client can read back (see the module docstring). QGIS asks for the master password if needed.
    """
    if not token:
        raise BackendError(None, "the access token is empty")
    manager = QgsApplication.authManager()
    config = QgsAuthMethodConfig("Basic")
    config.setName(name)
    config.setConfig("username", "hisem")
    config.setConfig("password", token)
    if authcfg:
        config.setId(authcfg)
        ok = manager.updateAuthenticationConfig(config)
    else:
        ok = manager.storeAuthenticationConfig(config)
    if not ok or not config.id():
        raise BackendError(None, "could not store the token in the QGIS authentication database: "
                                 "set or enter its master password (Settings > Options > Authentication)")
    return config.id()


class BackendClient:
    """One backend's /v1 API; every non-2xx answer raises ``BackendError`` with the server's ``detail``."""

    def __init__(self, url: str, authcfg: str | None = None, timeout_ms: int = 30000) -> None:
        url = url.strip().rstrip("/")
        parsed = QUrl(url)
        if not parsed.isValid() or parsed.scheme() not in ("http", "https") or not parsed.host():
            raise BackendError(None, f"not a backend URL: {url!r} (expected e.g. http://127.0.0.1:8765)")
        self.url = url
        self.authcfg = authcfg or None
        self.timeout_ms = timeout_ms
        # Resolved here, on the thread that builds the client (the GUI thread, where QGIS can ask for
        # the master password), rather than inside a task.
        self._bearer: str | None = None
        self._qgis_applies_auth = False
        if self.authcfg:
            self._resolve_auth(self.authcfg)

    # -- the API ---------------------------------------------------------------------------------

    def health(self, feedback: QgsFeedback | None = None) -> dict[str, Any]:
        return self._json("GET", "/health", feedback=feedback)

    def models(self, feedback: QgsFeedback | None = None) -> list[dict[str, Any]]:
        return self._json("GET", "/models", feedback=feedback)

    def submit(self, before: Path, after: Path, params: dict[str, Any],
               feedback: QgsFeedback | None = None) -> dict[str, Any]:
        """POST /v1/jobs with the two GeoTIFFs' bytes (never their paths) and ``params`` as JSON."""
        for path in (before, after):
            if not Path(path).is_file():
                raise BackendError(None, f"image chip not found: {path}")
        boundary = f"hisem-{uuid.uuid4().hex}"
        body = QTemporaryFile()  # streamed from disk: memory does not grow with the chips
        if not body.open():
            raise BackendError(None, f"cannot create a temporary file for the upload: {body.errorString()}")
        for name, path in (("before", Path(before)), ("after", Path(after))):
            body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                       f'filename="{name}.tif"\r\nContent-Type: image/tiff\r\n\r\n'.encode())
            with path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    body.write(chunk)
            body.write(b"\r\n")
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n'.encode())
        body.write(json.dumps(params).encode())
        body.write(f"\r\n--{boundary}--\r\n".encode())
        body.flush()
        body.seek(0)
        try:
            return self._json("POST", "/jobs", body=body, content_type=f"multipart/form-data; boundary={boundary}",
                              feedback=feedback)
        except BackendError as exc:
            if exc.status is not None or (feedback is not None and feedback.isCanceled()):
                raise
            # The backend refuses a wrong token before reading the body and closes the connection
            # mid-upload, which Qt reports as a transport error: a small authenticated request
            # brings back the 401 and its reason (and re-raises the original error otherwise).
            self.models(feedback=feedback)
            raise

    def status(self, job_id: str, feedback: QgsFeedback | None = None) -> dict[str, Any]:
        return self._json("GET", f"/jobs/{quote(job_id, safe='')}", feedback=feedback)

    def cancel(self, job_id: str, feedback: QgsFeedback | None = None) -> dict[str, Any]:
        """DELETE /v1/jobs/{id}: cancels a queued or running job, deletes a finished one."""
        return self._json("DELETE", f"/jobs/{quote(job_id, safe='')}", feedback=feedback)

    def result(self, job_id: str, feedback: QgsFeedback | None = None) -> dict[str, Any]:
        """The finished job's GeoJSON FeatureCollection (features, crs, crs_wkt, provenance)."""
        return self._json("GET", f"/jobs/{quote(job_id, safe='')}/result", feedback=feedback)

    # -- plumbing --------------------------------------------------------------------------------

    def _resolve_auth(self, authcfg: str) -> None:
        manager = QgsApplication.authManager()
        config = QgsAuthMethodConfig()
        if not manager.loadAuthenticationConfig(authcfg, config, True) or not config.isValid(True):
            raise BackendError(None, f"authentication configuration {authcfg!r} is missing or cannot be "
                                     "decrypted: check it in Settings > Options > Authentication")
        fields = TOKEN_FIELDS.get(config.method())
        if fields is None:
            self._qgis_applies_auth = True
            return
        token = next((config.config(f) for f in fields if config.config(f)), "")
        if not token:
            raise BackendError(None, f"authentication configuration {config.name()!r} holds no token: "
                                     "put the backend's token in its password field")
        self._bearer = token

    def _request(self, path: str, content_type: str | None = None) -> QNetworkRequest:
        request = QNetworkRequest(QUrl(self.url + API + path))
        request.setAttribute(QNetworkRequest.Attribute.CacheLoadControlAttribute,
                             QNetworkRequest.CacheLoadControl.AlwaysNetwork)
        request.setAttribute(QNetworkRequest.Attribute.CacheSaveControlAttribute, False)
        request.setTransferTimeout(self.timeout_ms)
        request.setRawHeader(b"Accept", b"application/json")
        if content_type:
            request.setHeader(QNetworkRequest.KnownHeaders.ContentTypeHeader, content_type)
        if self._bearer:
            request.setRawHeader(b"Authorization", f"Bearer {self._bearer}".encode())
        return request

    def _json(self, method: str, path: str, body: QTemporaryFile | None = None, content_type: str | None = None,
              feedback: QgsFeedback | None = None) -> Any:
        if feedback is not None and feedback.isCanceled():  # QGIS only listens for a cancel during the request
            raise BackendError(None, "request cancelled")
        request = self._request(path, content_type)
        blocking = QgsBlockingNetworkRequest()
        if self._qgis_applies_auth and self.authcfg:
            blocking.setAuthCfg(self.authcfg)
        if method == "GET":
            code = blocking.get(request, True, feedback)
        elif method == "POST":
            request.setHeader(QNetworkRequest.KnownHeaders.ContentLengthHeader, body.size() if body else 0)
            code = blocking.post(request, body, True, feedback) if body else blocking.post(
                request, QByteArray(), True, feedback)
        elif method == "DELETE":
            code = blocking.deleteResource(request, feedback)
        else:  # pragma: no cover - a programming error
            raise ValueError(method)
        reply = blocking.reply()
        status = reply.attribute(QNetworkRequest.Attribute.HttpStatusCodeAttribute)
        content = bytes(reply.content())
        if status is None:  # nothing answered
            raise self._transport_error(code, reply.error(), blocking.errorMessage(), feedback)
        status = int(status)
        if not 200 <= status < 300:
            raise self._http_error(status, content)
        try:
            return json.loads(content) if content else {}
        except ValueError as exc:
            raise BackendError(status, f"the backend at {self.url} answered {path} with something that is not "
                                       f"JSON ({exc}): is that URL a HiSem backend?") from exc

    def _http_error(self, status: int, content: bytes) -> BackendError:
        try:
            detail = json.loads(content).get("detail")
        except (ValueError, AttributeError):
            detail = None
        if not isinstance(detail, str):
            detail = json.dumps(detail) if detail else content.decode("utf-8", "replace")[:300].strip()
        if status == 401:
            detail = (f"the backend at {self.url} refused the access token: {detail or 'unauthorized'}; "
                      "set the right token in the HiSem backend panel (authentication configuration)")
        elif not detail:
            detail = f"the backend at {self.url} answered HTTP {status}"
        return BackendError(status, detail)

    def _transport_error(self, code: QgsBlockingNetworkRequest.ErrorCode, error: QNetworkReply.NetworkError,
                         message: str, feedback: QgsFeedback | None) -> BackendError:
        if feedback is not None and feedback.isCanceled():
            return BackendError(None, "request cancelled")
        message = f" ({message})" if message else ""
        if code == QgsBlockingNetworkRequest.ErrorCode.TimeoutError or error in (
                QNetworkReply.NetworkError.TimeoutError, QNetworkReply.NetworkError.OperationCanceledError):
            return BackendError(None, f"the backend at {self.url} did not answer within "
                                      f"{self.timeout_ms / 1000:g} s: is it busy or stuck?{message}")
        if error in (QNetworkReply.NetworkError.SslHandshakeFailedError,):
            return BackendError(None, f"TLS handshake with {self.url} failed{message}")
        return BackendError(None, f"no backend at {self.url}: start it with `hisem serve` or press "
                                  f"Start local backend{message}")


class LocalBackend:
    """``hisem serve`` on this machine, started for the user as a detached process.

    Detached (own session), so that it outlives a QGIS crash or restart and keeps no pipe to QGIS;
    its output goes to a log file whose tail explains a failed start.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self.log_path: Path | None = None

    def start(self, hisem_path: str, port: int, models_dir: str | None = None, timeout_s: float = 60,
              extra_args: Sequence[str] = (), log_dir: str | None = None, token: str | None = None,
              feedback: QgsFeedback | None = None) -> dict[str, Any]:
        """Launch ``hisem serve --port PORT`` and wait until /v1/health answers; returns the health.

        Blocks for up to ``timeout_s``: call it from a task, or accept a frozen GUI for that long.
        If a backend already answers on that port, nothing is started and its health is returned.
        """
        url = f"http://127.0.0.1:{port}"
        with contextlib.suppress(BackendError):
            return BackendClient(url, timeout_ms=2000).health(feedback)
        self.launch(hisem_path, port, models_dir, extra_args, log_dir, token)
        return self.wait_until_ready(timeout_s, feedback)

    def launch(self, hisem_path: str, port: int, models_dir: str | None = None, extra_args: Sequence[str] = (),
               log_dir: str | None = None, token: str | None = None) -> None:
        """Start the process without waiting for it (see ``wait_until_ready``)."""
        if self.running():
            raise BackendError(None, f"a local backend started by HiSem is already running at {self.url}")
        if not hisem_path:
            raise BackendError(None, "the `hisem` command was not found: install the HiSem backend "
                                     "(pip install hisem) and set its path in the HiSem settings")
        folder = Path(log_dir) if log_dir else Path(QgsApplication.qgisSettingsDirPath()) / "hisem"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = Path(tempfile.gettempdir())
        self.log_path = folder / f"serve-{port}.log"
        args = [hisem_path, "serve", "--port", str(port)]
        if models_dir:
            args += ["--models", str(models_dir)]
        args += list(extra_args)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}  # QGIS's, not hisem's
        if token:
            env["HISEM_TOKEN"] = token  # not an argument: arguments show in ps
        detach: dict[str, Any] = {"start_new_session": True}
        if sys.platform == "win32":
            detach = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
        with self.log_path.open("wb") as log:
            try:
                self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                env=env, close_fds=True, **detach)
            except OSError as exc:  # missing or not executable
                raise BackendError(None, f"cannot run the HiSem backend {hisem_path!r}: {exc.strerror or exc}; "
                                         "set the path of the `hisem` command in the HiSem settings") from exc
        self.url = f"http://127.0.0.1:{port}"

    def wait_until_ready(self, timeout_s: float = 60, feedback: QgsFeedback | None = None) -> dict[str, Any]:
        """Poll /v1/health until it answers; a process that exits or never answers -> BackendError."""
        if self.process is None or self.url is None:
            raise BackendError(None, "no local backend was launched")
        client = BackendClient(self.url, timeout_ms=2000)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise BackendError(None, f"the local backend exited with code {code} before answering:\n"
                                         f"{self.log_tail()}")
            try:
                return client.health(feedback)
            except BackendError:
                if feedback is not None and feedback.isCanceled():
                    self.stop()
                    raise
            if time.monotonic() > deadline:
                self.stop()
                raise BackendError(None, f"the local backend did not answer at {self.url} within {timeout_s:g} s:\n"
                                         f"{self.log_tail()}")
            time.sleep(0.25)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 30) -> None:
        """Stop the backend if this object started it (Ctrl-C first, so that it stops its workers)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if sys.platform == "win32":
            process.terminate()
        else:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:]) or f"(empty log: {self.log_path})"
