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
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


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
    from hisem.service.launcher import launch

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per poll otherwise

    with tempfile.TemporaryDirectory(prefix="hisem-bench-serve-") as tmp:
        work = Path(tmp)
        model_ref, note = (model, f"model {model}") if model else bench_model(work)
        info = resolve_model(model_ref)
        scene = write_scene(work / "scene", size_m, gsd, seed=seed)
        params = {"model": info.id}
        server = launch(work, info.path.parent, "--max-queue", "64", timeout_s=180.0)
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
            rss = server.peak_rss_mb()
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
