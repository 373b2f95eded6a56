"""The job store: jobs and their chunks in SQL, claimed with leases, shared by every worker and replica.

A job is split into chunks (a range of instances of one task's split). Any
worker of any replica claims a chunk with a lease (``claimed_by``,
``lease_until``), committed at once; no transaction stays open while it scores.
A chunk whose lease ran out (its worker or replica died) is claimed again, so a
chunk may be scored twice, but its result is recorded once (only by the holder
of its current lease), and the job's result is assembled once (the first
``finish`` of a running job wins). Times are the database's clock, so hosts with
skewed clocks agree on leases.

The SQL is shared; ``SqliteJobStore`` (embedded, the default) and
``PostgresJobStore`` (several replicas) supply connections, placeholders and
the row lock. Any failure to reach the database is ``StoreUnavailable``: job
routes answer 503 with ``Retry-After`` while predictions go on.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

from serving.errors import ApiError

MAX_CLAIMS = 3  # a chunk whose workers died this many times fails its job instead of looping
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")
SCHEMA_VERSION = 1

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS glue_jobs (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        request TEXT NOT NULL,
        total INTEGER NOT NULL,
        result TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS glue_job_chunks (
        job_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        task TEXT NOT NULL,
        split TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        stop_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        claimed_by TEXT,
        lease_until DOUBLE PRECISION,
        claims INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        PRIMARY KEY (job_id, idx))""",
    "CREATE INDEX IF NOT EXISTS glue_jobs_status ON glue_jobs (status, created_at)",
    "CREATE INDEX IF NOT EXISTS glue_job_chunks_claimable ON glue_job_chunks (status, lease_until)",
    "CREATE TABLE IF NOT EXISTS glue_schema (version INTEGER NOT NULL)",
)


class StoreFull(ApiError):
    """The request bodies of the queued and running jobs fill ``GLUE_TF_JOB_STORE_MAX_BYTES``."""

    status = 429
    code = "job_store_full"

    def __init__(self, message: str):
        super().__init__(message, headers={"Retry-After": "30"})


class StoreUnavailable(ApiError):
    status = 503
    code = "job_store_unavailable"

    def __init__(self, message: str):
        super().__init__(message, headers={"Retry-After": "5"})


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One claimed piece of a job: instances ``start:stop`` of ``task``'s ``split``."""

    job_id: str
    idx: int
    task: str
    split: str
    start: int
    stop: int
    claims: int


class JobStore:
    """The SQL both back-ends run; subclasses give ``_transaction()`` (a DB-API cursor in a committed
    transaction, ``StoreUnavailable`` if the database cannot be reached), ``NOW``, ``LOCK`` and ``backend``."""

    NOW = ""  # SQL: the database's clock in seconds since the epoch
    LOCK = ""  # SQL appended to the claim's inner SELECT (PostgreSQL: FOR UPDATE SKIP LOCKED)
    backend = ""
    available = True  # whether the last operation reached the database (for /readyz)

    def _sql(self, text: str) -> str:
        return text.replace("NOW()", self.NOW)

    def _run(self, query: str, params=(), fetch: str | None = None):
        with self._transaction() as cursor:
            cursor.execute(self._sql(query), params)
            if fetch == "one":
                return cursor.fetchone()
            if fetch == "all":
                return cursor.fetchall()
            return cursor.rowcount

    # --- jobs ------------------------------------------------------------------------------
    def _serialize_creates(self, cursor) -> None:
        """Makes the quota check and the insert of concurrent creates take turns (SQLite's ``BEGIN
        IMMEDIATE`` already does)."""

    def create(self, request: dict, chunks: list[tuple[str, str, int, int]], quota_bytes: int) -> str:
        """A queued job over ``chunks`` (``(task, split, start, stop)``); returns its id.

        Its request body is kept until the job ends; the bodies of all queued and running jobs
        together stay within ``quota_bytes`` (``StoreFull``, a 429: others will end), and a body larger
        than the whole quota is refused for good (413). Bodies are ASCII JSON, so characters are bytes.
        """
        job_id = uuid.uuid4().hex
        total = sum(stop - start for _, _, start, stop in chunks)
        text = json.dumps(request)
        if len(text) > quota_bytes:
            raise ApiError(f"the job's request is {len(text)} bytes; the job store holds at most {quota_bytes} "
                           "(GLUE_TF_JOB_STORE_MAX_BYTES)", status=413, code="job_too_large")
        with self._transaction() as cursor:
            self._serialize_creates(cursor)
            cursor.execute(self._sql("SELECT COALESCE(SUM(LENGTH(request)), 0) FROM glue_jobs "
                                     "WHERE status IN ('queued', 'running')"))
            held = int(cursor.fetchone()[0])
            if held + len(text) > quota_bytes:
                raise StoreFull(f"the job store holds {held} bytes of job requests; this one ({len(text)} bytes) "
                                f"would pass its quota of {quota_bytes} (GLUE_TF_JOB_STORE_MAX_BYTES); retry "
                                "when running jobs have ended")
            cursor.execute(self._sql(
                "INSERT INTO glue_jobs (id, status, request, total, created_at, updated_at) "
                "VALUES (?, 'queued', ?, ?, NOW(), NOW())"), (job_id, text, total))
            cursor.executemany(self._sql(
                "INSERT INTO glue_job_chunks (job_id, idx, task, split, start_at, stop_at) VALUES (?, ?, ?, ?, ?, ?)"),
                [(job_id, idx, *chunk) for idx, chunk in enumerate(chunks)])
        return job_id

    _JOB_COLUMNS = ("id, status, total, result, error, attempts, created_at, updated_at, finished_at, "
                    "(SELECT COALESCE(SUM(stop_at - start_at), 0) FROM glue_job_chunks c "
                    "WHERE c.job_id = glue_jobs.id AND c.status = 'done') AS done")

    def get(self, job_id: str, with_request: bool = False) -> dict | None:
        columns = self._JOB_COLUMNS + (", request" if with_request else "")
        row = self._run(f"SELECT {columns} FROM glue_jobs WHERE id = ?", (job_id,), fetch="one")
        return _job(row, with_request) if row else None

    def list(self, status: str | None = None, limit: int = 100) -> list[dict]:
        where, params = ("WHERE status = ?", (status, limit)) if status else ("", (limit,))
        rows = self._run(f"SELECT {self._JOB_COLUMNS} FROM glue_jobs {where} ORDER BY created_at DESC LIMIT ?",
                         params, fetch="all")
        return [_job(row) for row in rows]

    def cancel(self, job_id: str) -> bool:
        """Cancels a queued or running job; False if it had already finished."""
        return self._run("UPDATE glue_jobs SET status = 'cancelled', request = '', finished_at = NOW(), "
                         "updated_at = NOW() WHERE id = ? AND status IN ('queued', 'running')", (job_id,)) == 1

    def counts(self) -> dict[str, int]:
        rows = dict(self._run("SELECT status, COUNT(*) FROM glue_jobs GROUP BY status", fetch="all"))
        return {state: int(rows.get(state, 0)) for state in STATES}

    def active(self) -> int:
        return self._run("SELECT COUNT(*) FROM glue_jobs WHERE status IN ('queued', 'running')", fetch="one")[0]

    def purge(self, older_than_seconds: float) -> int:
        """Deletes finished jobs (and their chunks) finished more than ``older_than_seconds`` ago, and any
        request body a finished job still holds (jobs that ended before bodies were dropped at the end)."""
        with self._transaction() as cursor:
            cursor.execute("UPDATE glue_jobs SET request = '' WHERE status IN ('succeeded', 'failed', 'cancelled') "
                           "AND request <> ''")
            old = "SELECT id FROM glue_jobs WHERE finished_at < NOW() - ?"
            cursor.execute(self._sql(f"DELETE FROM glue_job_chunks WHERE job_id IN ({old})"), (older_than_seconds,))
            cursor.execute(self._sql(f"DELETE FROM glue_jobs WHERE id IN ({old})"), (older_than_seconds,))
            return cursor.rowcount

    # --- chunks ----------------------------------------------------------------------------
    def claim(self, owner: str, lease_seconds: float) -> Chunk | None:
        """Leases the oldest claimable chunk: pending, or running with its lease run out."""
        with self._transaction() as cursor:
            cursor.execute(self._sql(
                "UPDATE glue_job_chunks SET status = 'running', claimed_by = ?, lease_until = NOW() + ?, "
                "claims = claims + 1 WHERE (job_id, idx) = (SELECT c.job_id, c.idx FROM glue_job_chunks c "
                "JOIN glue_jobs j ON j.id = c.job_id WHERE j.status IN ('queued', 'running') AND "
                "(c.status = 'pending' OR (c.status = 'running' AND c.lease_until < NOW())) "
                f"ORDER BY j.created_at, c.idx LIMIT 1 {self.LOCK}) "
                "RETURNING job_id, idx, task, split, start_at, stop_at, claims"), (owner, lease_seconds))
            row = cursor.fetchone()
            if row is None:
                return None
            chunk = Chunk(*row)
            cursor.execute(self._sql(
                "UPDATE glue_jobs SET status = 'running', updated_at = NOW(), attempts = CASE WHEN attempts > ? "
                "THEN attempts ELSE ? END WHERE id = ? AND status IN ('queued', 'running')"),
                (chunk.claims, chunk.claims, chunk.job_id))
        return chunk

    def renew(self, chunk: Chunk, owner: str, lease_seconds: float) -> bool:
        """Extends the lease; False if the chunk was taken over (this worker's lease had run out)."""
        return self._run("UPDATE glue_job_chunks SET lease_until = NOW() + ? WHERE job_id = ? AND idx = ? "
                         "AND claimed_by = ? AND status = 'running'",
                         (lease_seconds, chunk.job_id, chunk.idx, owner)) == 1

    def record(self, chunk: Chunk, owner: str, result) -> bool:
        """Stores the chunk's result, once: only the holder of its current lease can."""
        return self._run("UPDATE glue_job_chunks SET status = 'done', result = ?, lease_until = NULL "
                         "WHERE job_id = ? AND idx = ? AND claimed_by = ? AND status = 'running'",
                         (json.dumps(result), chunk.job_id, chunk.idx, owner)) == 1

    def complete_jobs(self) -> list[str]:
        """Running jobs whose every chunk is done: waiting to be assembled."""
        rows = self._run("SELECT id FROM glue_jobs j WHERE status = 'running' AND NOT EXISTS "
                         "(SELECT 1 FROM glue_job_chunks c WHERE c.job_id = j.id AND c.status <> 'done')",
                         fetch="all")
        return [row[0] for row in rows]

    def chunk_results(self, job_id: str) -> list[tuple[str, str, int, object]]:
        """``(task, split, start, result)`` of every chunk, in order."""
        rows = self._run("SELECT task, split, start_at, result FROM glue_job_chunks WHERE job_id = ? ORDER BY idx",
                         (job_id,), fetch="all")
        return [(task, split, start, json.loads(result) if result else None) for task, split, start, result in rows]

    def finish(self, job_id: str, result: dict) -> bool:
        """Records the job's result; only the first caller for a running job succeeds."""
        return self._run("UPDATE glue_jobs SET status = 'succeeded', result = ?, request = '', finished_at = NOW(), "
                         "updated_at = NOW() WHERE id = ? AND status = 'running'", (json.dumps(result), job_id)) == 1

    def fail(self, job_id: str, reason: str) -> bool:
        return self._run("UPDATE glue_jobs SET status = 'failed', error = ?, request = '', finished_at = NOW(), "
                         "updated_at = NOW() WHERE id = ? AND status IN ('queued', 'running')", (reason, job_id)) == 1

    def close(self) -> None:
        pass


def _job(row, with_request: bool = False) -> dict:
    (job_id, status, total, result, error, attempts, created, updated, finished, done) = row[:10]
    job = {"id": job_id, "status": status, "progress": {"done": int(done), "total": int(total)},
           "result": json.loads(result) if result else None, "error": error, "attempts": int(attempts),
           "created_at": created, "updated_at": updated, "finished_at": finished}
    if with_request:
        job["request"] = json.loads(row[10]) if row[10] else None  # None: the job ended, its request is gone
    return job
