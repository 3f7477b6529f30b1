"""Worker processes that run jobs through ``caption_changes``, off the server's event loop.

Why processes and not threads: GDAL and ONNX Runtime are native code; if one of them crashes or
a job is killed by the OOM killer, only that worker dies. Its supervisor (a thread in the server)
sees the pipe close, reports the job failed, and starts a fresh worker; the server keeps serving.

Each worker loads the default model's engine once at start (the server's lifespan waits for it)
and keeps one engine per model it has run. Messages on the pipe, worker -> server::

    ("ready", {"model": id | None, "providers": [...], "device": str})
    ("progress", done, total)
    ("done", {"changes": n, "warnings": [...], ...})   ("failed", message)   ("cancelled", None)
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hisem.service.errors import describe_exit, scrub_paths
from hisem.service.jobs import RESULT_GEOJSON, RESULT_GPKG, JobStore

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
POLL_S = 0.2
IDLE_CHECK_S = 1.0  # how often an idle supervisor looks at its worker
RESTART_RETRY_S = 5.0
SHUTDOWN_REASON = "the server shut down while this job was running; submit it again"


def cpu_device_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "CPU"


def _device(providers: list[str]) -> str:
    if providers and providers[0] == "CUDAExecutionProvider":
        import subprocess

        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
            return out.splitlines()[0] if out else "CUDA GPU"
        except (OSError, subprocess.SubprocessError):
            return "CUDA GPU"
    return f"CPU: {cpu_device_name()} ({os.cpu_count()} cores)"


# ---------------------------------------------------------------------------------------------
# Inside the worker process


def worker_main(conn: Connection, cancel: Any, threads: int | None) -> None:
    """Load the default engine, say ready, then run jobs until told to stop (``None``) or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    logging.basicConfig(level=logging.INFO, format="%(levelname)s worker %(process)d %(name)s: %(message)s")
    from hisem.engine import OrtRunner, resolve_model
    from hisem.engine.ort_runner import choose_providers

    runners: dict[str, OrtRunner] = {}
    try:
        default = resolve_model(None)
        runners[default.id] = OrtRunner(default.path, threads=threads)
        ready = {"model": default.id, "providers": runners[default.id].providers}
    except FileNotFoundError as exc:  # no model installed: serve anyway, jobs will be refused
        log.warning("%s", exc)
        ready = {"model": None, "providers": choose_providers()}
    ready["device"] = _device(ready["providers"])
    conn.send(("ready", ready))
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        conn.send(_run(spec, runners, conn, cancel, threads))


def _run(spec: dict[str, Any], runners: dict[str, Any], conn: Connection, cancel: Any,
         threads: int | None) -> tuple[str, Any]:
    from hisem.engine import OrtRunner, resolve_model
    from hisem.geo import GEO_ERRORS, RasterReadError
    from hisem.geo.raster import RasterLimits
    from hisem.pipeline import CaptionOptions, PipelineCancelled, caption_changes
    from hisem.service.result import write_result_geojson

    job_dir = Path(spec["dir"])
    inputs = {"before": spec["before"], "after": spec["after"]}

    def clean(message: str) -> str:
        return scrub_paths(message, inputs, job_dir.parent)

    try:
        model = resolve_model(spec["options"]["model"])
        if model.id not in runners:
            runners[model.id] = OrtRunner(model.path, threads=threads)
        options = CaptionOptions(**spec["options"], raster_limits=RasterLimits(**spec["limits"]),
                                 runner=runners[model.id], overwrite=True,
                                 progress=lambda done, total: conn.send(("progress", done, total)),
                                 cancel=cancel.is_set)
        result = caption_changes(inputs["before"], inputs["after"], job_dir / RESULT_GPKG, options)
        warnings = [clean(w) for w in result.warnings]  # the run table's name the job's files
        write_result_geojson(job_dir / RESULT_GPKG, job_dir / RESULT_GEOJSON,
                             {**spec["provenance"], "warnings": warnings})
    except PipelineCancelled:
        return "cancelled", None
    except RasterReadError as exc:
        return "failed", f"{clean(str(exc))} (the upload is damaged inside: the checks at submission read only " \
                         "its first and last blocks)"
    except (*GEO_ERRORS, FileNotFoundError, ValueError) as exc:
        return "failed", clean(str(exc))
    except RuntimeError as exc:  # GDAL's own errors, raised where the geo layer does not wrap them
        log.exception("job %s", spec["id"])
        return "failed", f"GDAL could not read or write the rasters of this job: {clean(str(exc))}"
    except Exception as exc:  # a job's bug must not kill the worker; the log has the trace
        log.exception("job %s", spec["id"])
        return "failed", f"the job stopped on an unexpected error ({type(exc).__name__}: {clean(str(exc))}); " \
                         "the server log has the details"
    return "done", {"changes": result.changes, "warnings": warnings,
                    "timings": result.timings, "tiles_total": result.tiles_total,
                    "tiles_skipped": result.tiles_skipped}


# ---------------------------------------------------------------------------------------------
# Inside the server


class _Worker:
    """The server's handle on one worker process."""

    def __init__(self, ctx: Any, index: int, threads: int | None) -> None:
        self.index = index
        self.cancel = ctx.Event()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, self.cancel, threads),
                                   name=f"hisem-worker-{index}", daemon=True)
        self.process.start()
        child.close()  # our copy: without it, EOF never arrives when the worker dies
        self.info: dict[str, Any] = {}

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        if not self.conn.poll(timeout):
            raise RuntimeError(f"worker {self.index} did not start within {timeout:.0f} s")
        kind, info = self.conn.recv()
        if kind != "ready":
            raise RuntimeError(f"worker {self.index} said {kind!r} before ready")
        self.info = info
        return info

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


class WorkerPool:
    """``n`` worker processes, each fed by a supervisor thread from one shared queue of job ids.

    A supervisor also watches its worker while idle (every ``IDLE_CHECK_S``): a worker that died
    between jobs is replaced before the next job reaches it, and ``health()`` reports the restart.
    """

    def __init__(self, store: JobStore, workers: int = 1, threads: int | None = None,
                 raster_limits: dict[str, int | None] | None = None) -> None:
        self.store = store
        self.limits = raster_limits or {}  # RasterLimits fields: the workers apply the upload check's caps too
        self.n = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._workers: list[_Worker] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.info: dict[str, Any] = {}
        self.restarts = 0
        self.last_failure: str | None = None

    def start(self) -> dict[str, Any]:
        """Start every worker and wait until each has loaded its engine; returns the first's info."""
        self._workers = [_Worker(self._ctx, i, self.threads) for i in range(self.n)]
        for worker in self._workers:
            worker.wait_ready()
        self.info = self._workers[0].info
        for i in range(self.n):
            thread = threading.Thread(target=self._supervise, args=(i,), name=f"hisem-supervisor-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self.info

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def health(self) -> dict[str, Any]:
        """Workers ready to run a job, restarts so far and the last failure (for ``GET /v1/health``)."""
        alive = sum(bool(w.info) and w.process.is_alive() for w in self._workers)
        return {"workers_alive": alive, "worker_restarts": self.restarts, "last_worker_failure": self.last_failure}

    def stop(self) -> None:
        """Stop the workers; a running job is failed ("the server shut down"), queued ones too."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for worker in self._workers:
            worker.cancel.set()
            worker.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.interrupt_unfinished("the server shut down before this job ran; submit it again")

    def _supervise(self, index: int) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self._queue.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                self._replace_if_dead(index)
                continue
            if job_id is None:
                return
            self._replace_if_dead(index)  # before the job: it then runs instead of failing unrun
            job = self.store.start(job_id)
            if job is None:  # cancelled while queued
                continue
            try:
                self._run_on_worker(index, job_id, {
                    "id": job.id, "dir": str(job.dir), "before": str(job.dir / "before.tif"),
                    "after": str(job.dir / "after.tif"), "options": job.options, "provenance": job.provenance,
                    "limits": self.limits,
                })
            except Exception as exc:  # the supervisor must survive anything
                log.exception("supervisor %d", index)
                self.store.finish(job_id, "failed", f"the server could not run this job ({type(exc).__name__}); "
                                  "the server log has the details")

    def _replace_if_dead(self, index: int) -> None:
        worker = self._workers[index]
        if self._stopping.is_set() or worker.process.is_alive():
            return
        worker.process.join(timeout=5)
        reason = describe_exit(worker.process.exitcode)
        log.error("worker %d died while idle (%s); starting a new one", index, reason)
        self._restart(index, f"worker {index} died while idle ({reason})")

    def _run_on_worker(self, index: int, job_id: str, spec: dict[str, Any]) -> None:
        worker = self._workers[index]
        worker.cancel.clear()
        try:
            worker.conn.send(spec)
            while True:
                if self.store.cancel_requested(job_id):
                    worker.cancel.set()
                if not worker.conn.poll(POLL_S):
                    if not worker.process.is_alive():
                        raise EOFError
                    continue
                message = worker.conn.recv()
                if message[0] == "progress":
                    self.store.progress(job_id, message[1], message[2])
                    continue
                kind, payload = message
                if kind == "done":
                    self.store.finish(job_id, "done", changes=payload["changes"], warnings=payload["warnings"])
                elif kind == "cancelled" and self._stopping.is_set() and not self.store.cancel_requested(job_id):
                    self.store.finish(job_id, "failed", SHUTDOWN_REASON)
                else:
                    self.store.finish(job_id, kind, payload)
                return
        except (EOFError, OSError, BrokenPipeError):
            worker.process.join(timeout=5)
            if self._stopping.is_set():
                self.store.finish(job_id, "failed", SHUTDOWN_REASON)
                return
            reason = describe_exit(worker.process.exitcode)
            log.error("worker %d died (%s) running job %s; starting a new one", index, reason, job_id)
            self.store.finish(job_id, "failed", f"the worker process running this job died ({reason}); "
                              "the server is still up: submit the job again")
            self._restart(index, f"worker {index} died running a job ({reason})")

    def _restart(self, index: int, failure: str) -> None:
        """A fresh worker in slot ``index``, retried until one is ready (or the server stops)."""
        self.last_failure = f"{failure} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
        self.restarts += 1
        self._workers[index].conn.close()
        while not self._stopping.is_set():
            t0 = time.perf_counter()
            self._workers[index] = _Worker(self._ctx, index, self.threads)
            try:
                self._workers[index].wait_ready()
            except (RuntimeError, EOFError, OSError) as exc:
                log.error("worker %d did not restart: %s; retrying in %.0f s", index, exc, RESTART_RETRY_S)
                self._workers[index].stop(timeout=1)
                self._stopping.wait(RESTART_RETRY_S)
                continue
            log.info("worker %d restarted in %.1f s", index, time.perf_counter() - t0)
            return
