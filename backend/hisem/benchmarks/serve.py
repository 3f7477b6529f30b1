"""`hisem bench serve`: what the HTTP service costs on top of `hisem caption`, and its throughput.

- ``overhead_ratio``: wall time of one HTTP job (upload, queue, run, result download) on a warm
  server over the wall time of the `hisem caption` command on the same scene; target <= 1.10.
  Each is the best of ``repeats`` runs, alternated so that both see the same machine load.
- ``jobs_per_min``: jobs finished per minute when ``clients`` clients submit one job each at once.
- ``peak_rss_mb``: peak RSS of the server process and of its worker processes (VmHWM).

The server runs as the analyst runs it (`hisem serve`, default workers and threads) in its own
process on a free loopback port; the client is httpx. Model: as in `hisem bench caption`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return [p for p in pids if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]


class _Server:
    """`hisem serve` in a child process, stopped with SIGINT like Ctrl-C."""

    def __init__(self, work: Path, models_dir: Path) -> None:
        import httpx

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (work / "serve.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hisem", "serve", "--port", str(self.port), "--models", str(models_dir),
             "--jobs-dir", str(work / "jobs"), "--max-queue", "64"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hisem serve exited {self.process.returncode}; see {work / 'serve.log'}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"hisem serve did not answer within {START_TIMEOUT_S:.0f} s")

    def peak_rss(self) -> dict[str, float]:
        workers = [_peak_rss_mb(p) for p in _children(self.process.pid)]
        server = _peak_rss_mb(self.process.pid)
        return {"server": server, "workers_max": max(workers, default=0.0), "total": server + sum(workers)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def _http_job(url: str, before: Path, after: Path, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Seconds from the upload's start to the result downloaded, and the job's final status."""
    import httpx

    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600) as client:
        files = {"before": ("before.tif", before.read_bytes(), "image/tiff"),
                 "after": ("after.tif", after.read_bytes(), "image/tiff")}
        response = client.post("/v1/jobs", files=files, data={"params": json.dumps(params)})
        response.raise_for_status()
        job_id = response.json()["id"]
        while (status := client.get(f"/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
            time.sleep(0.05)
        if status["state"] != "done":
            raise RuntimeError(f"benchmark job {job_id} {status['state']}: {status['error']}")
        client.get(f"/v1/jobs/{job_id}/result").raise_for_status()
    return time.perf_counter() - t0, status


def _caption_cli(before: Path, after: Path, out: Path, model: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hisem", "caption", str(before), str(after), "-o", str(out),
                    "--model", model, "--overwrite", "--no-progress"], check=True, capture_output=True)
    return time.perf_counter() - t0


def bench_serve(size_m: float = 1000.0, gsd: float = 0.5, clients: int = 8, repeats: int = 2,
                model: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Figures of the HTTP service against `hisem caption` (see the module docstring)."""
    from hisem.benchmarks.caption import bench_model
    from hisem.data.synth.georef import write_scene
    from hisem.engine import resolve_model

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per poll otherwise

    with tempfile.TemporaryDirectory(prefix="hisem-bench-serve-") as tmp:
        work = Path(tmp)
        model_ref, note = (model, f"model {model}") if model else bench_model(work)
        info = resolve_model(model_ref)
        scene = write_scene(work / "scene", size_m, gsd, seed=seed)
        params = {"model": info.id}
        server = _Server(work, info.path.parent)
        try:
            _http_job(server.url, scene.before, scene.after, params)  # warm-up: first-call costs
            http_s, cli_s = [], []
            for i in range(repeats):
                cli_s.append(_caption_cli(scene.before, scene.after, work / f"cli{i}.gpkg", str(info.path)))
                seconds, status = _http_job(server.url, scene.before, scene.after, params)
                http_s.append(seconds)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda _: _http_job(server.url, scene.before, scene.after, params), range(clients)))
            concurrent_s = time.perf_counter() - t0
            rss = server.peak_rss()
        finally:
            server.stop()
    return {
        "model": note,
        "scene_km2": (size_m / 1000) ** 2,
        "gsd_m": gsd,
        "tiles": status["tiles_total"],
        "http_job_s": min(http_s),
        "caption_cli_s": min(cli_s),
        "overhead_ratio": min(http_s) / min(cli_s),
        "runs": {"http_job_s": http_s, "caption_cli_s": cli_s},
        "clients": clients,
        "concurrent_wall_s": concurrent_s,
        "jobs_per_min": clients / concurrent_s * 60.0,
        "peak_rss_mb": rss,
        "cpu_count": os.cpu_count(),
    }
