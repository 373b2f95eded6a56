"""Background scoring jobs whose state lives in SQLite, so any worker can answer for any job.

A job row holds the request, progress, result or error, and a heartbeat. The
worker that accepts a job runs it in a small thread pool and beats while it
works. Every worker also sweeps for jobs whose heartbeat went stale (their
worker died or was restarted) and takes them over; a job whose workers died
``MAX_ATTEMPTS`` times is marked failed with that reason, never left running.
Finished results stay in the database across restarts.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger("glue_tf.serving")
MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
)
"""


class JobStore:
    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.row_factory = sqlite3.Row
        return db

    def create(self, request: dict, total: int) -> str:
        job_id = uuid.uuid4().hex
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO jobs (id, status, request, total, created_at, updated_at, heartbeat_at) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, json.dumps(request), total, now, now, now),
            )
        return job_id

    def get(self, job_id: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        job = dict(row)
        job["request"] = json.loads(job["request"])
        job["result"] = json.loads(job["result"]) if job["result"] else None
        return job

    def active(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Jobs by state (every state, zero included), for the metrics."""
        with self._connect() as db:
            rows = dict(db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {state: rows.get(state, 0) for state in ("queued", "running", "succeeded", "failed")}

    def claim(self, job_id: str, owner: str, stale_before: float | None = None) -> bool:
        """Takes a queued job, or (``stale_before``) a job whose heartbeat is older than that."""
        now = time.time()
        with self._connect() as db:
            if stale_before is None:
                cursor = db.execute(
                    "UPDATE jobs SET status='running', owner=?, attempts=attempts+1, heartbeat_at=?, updated_at=? "
                    "WHERE id=? AND status='queued'", (owner, now, now, job_id))
            else:
                cursor = db.execute(
                    "UPDATE jobs SET status='running', owner=?, attempts=attempts+1, done=0, heartbeat_at=?, "
                    "updated_at=? WHERE id=? AND status IN ('queued', 'running') AND heartbeat_at < ?",
                    (owner, now, now, job_id, stale_before))
            return cursor.rowcount == 1

    def stale(self, stale_before: float) -> list[dict]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, attempts, owner FROM jobs WHERE status IN ('queued', 'running') AND heartbeat_at < ?",
                (stale_before,)).fetchall()
        return [dict(r) for r in rows]

    def beat(self, job_id: str, owner: str, done: int) -> bool:
        """Records progress; False if another worker has taken the job over."""
        now = time.time()
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE jobs SET done=?, heartbeat_at=?, updated_at=? WHERE id=? AND owner=? AND status='running'",
                (done, now, now, job_id, owner))
            return cursor.rowcount == 1

    def finish(self, job_id: str, owner: str, result: dict) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute("UPDATE jobs SET status='succeeded', result=?, done=total, updated_at=? WHERE id=? AND owner=?",
                       (json.dumps(result), now, job_id, owner))

    def fail(self, job_id: str, reason: str, owner: str | None = None) -> None:
        now = time.time()
        with self._connect() as db:
            if owner is None:
                db.execute("UPDATE jobs SET status='failed', error=?, updated_at=? WHERE id=?", (reason, now, job_id))
            else:
                db.execute("UPDATE jobs SET status='failed', error=?, updated_at=? WHERE id=? AND owner=?",
                           (reason, now, job_id, owner))


class JobRunner:
    """Runs jobs of this worker and adopts stale ones; ``work(job, beat) -> result``."""

    def __init__(self, store: JobStore, work, concurrency: int = 2, stale_seconds: float = 30.0):
        self.store = store
        self.work = work
        self.stale_seconds = stale_seconds
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="job-sweeper", daemon=True)
        self._sweeper.start()

    def submit(self, job_id: str) -> None:
        self._pool.submit(self._run, job_id, None)

    def _run(self, job_id: str, stale_before: float | None) -> None:
        if not self.store.claim(job_id, self.owner, stale_before):
            return  # another worker has it
        job = self.store.get(job_id)

        def beat(done: int) -> None:
            if not self.store.beat(job_id, self.owner, done):
                raise _Superseded()

        try:
            result = self.work(job, beat)
        except _Superseded:
            return
        except Exception as error:  # noqa: BLE001 - the job fails, the worker lives
            log.exception("job %s failed", job_id)
            self.store.fail(job_id, f"{type(error).__name__}: {error}", self.owner)
            return
        self.store.finish(job_id, self.owner, result)

    def sweep(self) -> None:
        stale_before = time.time() - self.stale_seconds
        for job in self.store.stale(stale_before):
            if job["attempts"] >= MAX_ATTEMPTS:
                self.store.fail(job["id"], f"abandoned: the workers running it stopped {job['attempts']} times")
                continue
            log.warning("job %s: heartbeat stale (owner %s); taking it over", job["id"], job["owner"])
            self._pool.submit(self._run, job["id"], stale_before)

    def _sweep_loop(self) -> None:
        interval = max(self.stale_seconds / 3, 0.5)
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001
                log.exception("job sweep failed")


class _Superseded(Exception):
    """The job was taken over by another worker while this one was slow."""
