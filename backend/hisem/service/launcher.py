"""`hisem serve` in a child process on a free loopback port: for benchmarks, tests and scripts.

``launch`` returns once /v1/health answers; ``stop`` sends SIGINT, as Ctrl-C would, so the server
shuts its workers down cleanly. Linux only for the process figures (``/proc``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log: Path
    token: str | None = None

    def worker_pids(self) -> list[int]:
        """The worker processes: the server's children started by multiprocessing's spawn."""
        pids = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
        return [p for p in pids if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM of the server and of its workers, in MiB."""
        workers = [_peak_rss_mb(p) for p in self.worker_pids()]
        server = _peak_rss_mb(self.process.pid)
        return {"server": server, "workers_max": max(workers, default=0.0), "total": server + sum(workers)}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def launch(work: Path, models_dir: Path, *args: str, token: str | None = None,
           env: dict[str, str] | None = None, timeout_s: float = START_TIMEOUT_S) -> ServerProcess:
    """``hisem serve --models models_dir ARGS`` with its jobs and log under ``work``; waits for health."""
    port = free_port()
    log = work / f"serve-{port}.log"
    full_env = dict(os.environ, **(env or {}))
    if token is not None:
        full_env["HISEM_TOKEN"] = token
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hisem", "serve", "--port", str(port), "--models", str(models_dir),
             "--jobs-dir", str(work / f"jobs-{port}"), *args], stdout=out, stderr=subprocess.STDOUT, env=full_env)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log, token)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hisem serve exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/v1/health", timeout=2):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"hisem serve did not answer within {timeout_s:.0f} s:\n{log.read_text()}")
