"""Start the real `hisem serve` (uvicorn, worker processes) on a free loopback port, and talk to it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from hisem.service.launcher import ServerProcess, free_port, launch

__all__ = ["Server", "free_port", "start_server", "submit", "wait_for"]


class Server(ServerProcess):
    """The launcher's server, plus an httpx client with the server's token."""

    def client(self, token: str | None = "default", timeout: float = 60.0) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def start_server(tmp: Path, models_dir: Path, *args: str, token: str | None = None,
                 env: dict[str, str] | None = None) -> Server:
    """``hisem serve --models models_dir ARGS`` in its own process; returns once /v1/health answers."""
    server = launch(tmp, models_dir, *args, token=token, env=env)
    return Server(server.url, server.process, server.log, server.token)


def submit(client: httpx.Client, before: Path, after: Path, params: dict[str, Any] | str | None = None
           ) -> httpx.Response:
    import json

    files = {"before": ("before.tif", before.read_bytes(), "image/tiff"),
             "after": ("after.tif", after.read_bytes(), "image/tiff")}
    data = {"params": params if isinstance(params, str) else json.dumps(params or {})}
    return client.post("/v1/jobs", files=files, data=data)


def wait_for(client: httpx.Client, job_id: str, states: tuple[str, ...] = ("done", "failed", "cancelled"),
             timeout: float = 300.0, min_done: int = 0) -> dict[str, Any]:
    """Poll a job until it reaches one of ``states`` (and, if running, has done ``min_done`` tiles)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in states and (status["state"] != "running" or status["tiles_done"] >= min_done):
            return status
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {status['state']} after {timeout} s")
