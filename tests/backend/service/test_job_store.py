"""The job store on its own: ETA, retention on disk, and what a restarted server finds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hisem.service.jobs import Job, JobStore, QueueFullError


def _job(store: JobStore, tiles: int = 100) -> Job:
    job_id, job_dir = store.reserve()
    job = Job(id=job_id, dir=job_dir, model="m", options={}, provenance={}, tiles_total=tiles)
    store.add(job)
    return job


def test_states_progress_and_eta(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_queue=4, ttl_s=60)
    job = _job(store)
    assert store.status(job.id)["eta_s"] is None  # queued
    store.start(job.id)
    job.started = time.time() - 10.0  # 10 s in
    store.progress(job.id, 25, 100)
    status = store.status(job.id)
    assert status["state"] == "running" and status["progress"] == 0.25
    assert status["eta_s"] == pytest.approx(30.0, abs=0.5)  # 25 tiles per 10 s, 75 left
    store.finish(job.id, "done", changes=3)
    status = store.status(job.id)
    assert status["tiles_done"] == 100 and status["result_url"].endswith("/result") and status["changes"] == 3


def test_queue_limit_counts_only_unfinished_jobs(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_queue=1, ttl_s=60)
    first = _job(store)
    with pytest.raises(QueueFullError, match="queue is full"):
        store.reserve()
    store.start(first.id)
    store.finish(first.id, "failed", "boom")
    _job(store)  # room again


def test_cancel_queued_at_once_running_at_next_batch(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_queue=4, ttl_s=60)
    queued, running = _job(store), _job(store)
    store.start(running.id)
    assert store.cancel(queued.id)["state"] == "cancelled"
    assert store.start(queued.id) is None  # a worker skips it
    assert store.cancel(running.id)["state"] == "running" and store.cancel_requested(running.id)


def test_finished_jobs_expire_with_their_folders(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_queue=4, ttl_s=60)
    old, recent, active = _job(store), _job(store), _job(store)
    for job in (old, recent):
        store.start(job.id)
        store.finish(job.id, "done")
    old.finished = time.time() - 61
    orphan = tmp_path / "orphan"  # an upload a crashed server left without a job.json
    orphan.mkdir()
    (orphan / "before.tif").write_bytes(b"x")
    os.utime(orphan, (time.time() - 120, time.time() - 120))
    assert store.sweep() == [old.id]
    assert not old.dir.exists() and recent.dir.exists() and active.dir.exists() and not orphan.exists()
    assert store.get(old.id) is None


def test_a_restarted_server_keeps_finished_jobs_and_fails_interrupted_ones(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_queue=4, ttl_s=60)
    done, interrupted = _job(store), _job(store)
    store.start(done.id)
    store.finish(done.id, "done", changes=2)
    store.start(interrupted.id)
    again = JobStore(tmp_path, max_queue=4, ttl_s=60)
    assert again.load() == 2
    assert again.status(done.id)["state"] == "done" and again.status(done.id)["changes"] == 2
    status = again.status(interrupted.id)
    assert status["state"] == "failed" and "server stopped" in status["error"]
