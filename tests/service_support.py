"""Start the real `hisem serve` (uvicorn, worker processes) on a free loopback port, and talk to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    token: str | None = None

    def client(self, token: str | None = "default", timeout: float = 60.0) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def worker_pids(self) -> list[int]:
        """The worker processes: the server's children (spawned by multiprocessing)."""
        pids = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            pids += [int(p) for p in children]
        return [p for p in pids if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(tmp: Path, models_dir: Path, *args: str, token: str | None = None,
                 env: dict[str, str] | None = None) -> Server:
    """``hisem serve --models models_dir ARGS`` in its own process; returns once /v1/health answers."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    full_env = dict(os.environ, **(env or {}))
    if token is not None:
        full_env["HISEM_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "hisem", "serve", "--port", str(port), "--models", str(models_dir),
         "--jobs-dir", str(tmp / f"jobs-{port}"), *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=full_env)
    server = Server(f"http://127.0.0.1:{port}", process, log, token)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hisem serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"hisem serve did not answer within {START_TIMEOUT_S} s:\n{log.read_text()}")


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
