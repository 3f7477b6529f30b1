"""Jobs and their store: states, progress, ETA, persistence on disk and retention.

Each job lives in its own folder under the jobs directory: the uploaded rasters, ``job.json``
(rewritten on every change of state) and, once done, ``result.gpkg`` and ``result.geojson``.
A restarted server reloads finished jobs from there and reports the ones it was running as
failed, so no job silently disappears; finished jobs are deleted after ``ttl_s``.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hisem.service.schemas import FINISHED_STATES

log = logging.getLogger(__name__)

RESULT_GEOJSON = "result.geojson"
RESULT_GPKG = "result.gpkg"


class QueueFullError(Exception):
    """More jobs queued or running than the server accepts."""


def _interrupt(job: Job, reason: str) -> None:
    """An interrupted job is failed with the reason, never left queued or running, nor "cancelled" by nobody."""
    job.state, job.finished, job.error = "failed", time.time(), reason


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Job:
    """One caption run requested over HTTP. Mutated only under the store's lock."""

    id: str
    dir: Path
    model: str
    options: dict[str, Any]  # CaptionOptions keyword arguments
    provenance: dict[str, Any]  # dates, labels, upload names: copied into the result
    tiles_total: int
    state: str = "queued"
    tiles_done: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    changes: int | None = None
    cancel_requested: bool = False

    @property
    def finished_state(self) -> bool:
        return self.state in FINISHED_STATES

    def eta_s(self, now: float | None = None) -> float | None:
        """Time left at the rate so far; None until the first batch is done."""
        if self.state != "running" or self.started is None or self.tiles_done <= 0:
            return None
        elapsed = (now or time.time()) - self.started
        return round(elapsed / self.tiles_done * max(self.tiles_total - self.tiles_done, 0), 1)

    def status(self) -> dict[str, Any]:
        """The ``JobStatus`` body."""
        total = max(self.tiles_total, 1)
        return {
            "id": self.id, "state": self.state, "tiles_done": self.tiles_done, "tiles_total": self.tiles_total,
            "progress": round(min(self.tiles_done / total, 1.0), 4), "eta_s": self.eta_s(),
            "created": _iso(self.created), "started": _iso(self.started), "finished": _iso(self.finished),
            "error": self.error, "warnings": self.warnings, "model": self.model, "changes": self.changes,
            "result_url": f"/v1/jobs/{self.id}/result" if self.state == "done" else None,
        }

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["dir"] = str(self.dir)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Job:
        record = dict(record, dir=Path(record["dir"]))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})


class JobStore:
    """Thread-safe registry of jobs, backed by one folder per job."""

    def __init__(self, root: Path, max_queue: int, ttl_s: float) -> None:
        self.root = root
        self.max_queue = max_queue
        self.ttl_s = ttl_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    # -- creation -------------------------------------------------------------------------------

    def reserve(self) -> tuple[str, Path]:
        """A fresh job id and its folder; QueueFullError before anything is written when full."""
        with self._lock:
            if self._active_count() >= self.max_queue:
                raise QueueFullError(f"the queue is full ({self.max_queue} jobs queued or running); retry later")
        job_id = uuid.uuid4().hex
        job_dir = self.root / job_id
        job_dir.mkdir()
        return job_id, job_dir

    def add(self, job: Job) -> None:
        """Register a planned job (its folder holds the inputs) as queued."""
        with self._lock:
            if self._active_count() >= self.max_queue:
                raise QueueFullError(f"the queue is full ({self.max_queue} jobs queued or running); retry later")
            self._jobs[job.id] = job
            self._save(job)

    def _active_count(self) -> int:
        return sum(not j.finished_state for j in self._jobs.values())

    # -- reading --------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def status(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.status()

    def all_status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.status() for j in sorted(self._jobs.values(), key=lambda j: j.created)]

    def counts(self) -> dict[str, int]:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
        return {s: states.count(s) for s in ("queued", "running", "done", "failed", "cancelled")}

    # -- transitions (called by the worker pool and the API) --------------------------------------

    def start(self, job_id: str) -> Job | None:
        """queued -> running; None when the job was cancelled (or removed) while queued."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state != "queued":
                return None
            job.state, job.started = "running", time.time()
            self._save(job)
            return job

    def progress(self, job_id: str, done: int, total: int) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.state == "running":
                job.tiles_done, job.tiles_total = done, total

    def finish(self, job_id: str, state: str, error: str | None = None, **fields: Any) -> None:
        """running -> done / failed / cancelled, with the worker's figures."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            job.state, job.finished, job.error = state, time.time(), error
            for key, value in fields.items():
                setattr(job, key, value)
            if state == "done":
                job.tiles_done = job.tiles_total
            self._save(job)

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Ask a job to stop: a queued one is cancelled at once, a running one at its next batch."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                job.state, job.finished = "cancelled", time.time()
                self._save(job)
            elif job.state == "running":
                job.cancel_requested = True
            return job.status()

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            return job is None or job.cancel_requested

    def remove(self, job_id: str) -> bool:
        """Forget a finished job and delete its folder."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.finished_state:
                return False
            del self._jobs[job_id]
        shutil.rmtree(job.dir, ignore_errors=True)
        return True

    # -- persistence and retention ----------------------------------------------------------------

    def _save(self, job: Job) -> None:
        tmp = job.dir / "job.json.tmp"
        try:
            tmp.write_text(json.dumps(job.to_json(), indent=1))
            tmp.replace(job.dir / "job.json")
        except OSError as exc:  # a full disk must not take the server down
            log.error("cannot record job %s: %s", job.id, exc)

    def load(self) -> int:
        """Reload the jobs a previous server left; unfinished ones become failed. Returns the count."""
        loaded = 0
        for record_path in sorted(self.root.glob("*/job.json")):
            try:
                job = Job.from_json(json.loads(record_path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring %s: %s", record_path, exc)
                continue
            if not job.finished_state:
                _interrupt(job, "the server stopped before this job finished; submit it again")
            with self._lock:
                self._jobs[job.id] = job
                self._save(job)
            loaded += 1
        return loaded

    def interrupt_unfinished(self, reason: str) -> list[str]:
        """Fail every queued or running job with ``reason`` (a server shutting down); returns their ids."""
        with self._lock:
            unfinished = [j for j in self._jobs.values() if not j.finished_state]
            for job in unfinished:
                _interrupt(job, reason)
                self._save(job)
        return [j.id for j in unfinished]

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete finished jobs older than the retention time; returns their ids."""
        now = time.time() if now is None else now
        with self._lock:
            expired = [j.id for j in self._jobs.values()
                       if j.finished_state and j.finished is not None and now - j.finished > self.ttl_s]
        for job_id in expired:
            self.remove(job_id)
        # Folders a crashed server left without a job.json (an upload interrupted mid-way).
        for folder in self.root.iterdir():
            if folder.is_dir() and not (folder / "job.json").exists() and folder.name not in self._jobs \
                    and now - folder.stat().st_mtime > self.ttl_s:
                shutil.rmtree(folder, ignore_errors=True)
        return expired
