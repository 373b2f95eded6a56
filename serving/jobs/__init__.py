"""Background scoring jobs: a store any worker or replica can reach, and the runner that scores their chunks.

SQLite in the state folder by default (nothing to install; the workers of one
host share it); PostgreSQL when ``GLUE_TF_DATABASE_URL`` names one, so that
every replica behind a load balancer lists, polls and finishes every job.
"""

from __future__ import annotations

import os

from serving.jobs.runner import JobRunner
from serving.jobs.store import FINISHED, STATES, Chunk, JobStore, StoreUnavailable


def open_store(settings) -> JobStore:
    if settings.database_url:
        from serving.jobs.postgres import PostgresJobStore

        return PostgresJobStore(settings.database_url)
    from serving.jobs.sqlite import SqliteJobStore

    return SqliteJobStore(os.path.join(settings.state_dir, "jobs.sqlite3"))


__all__ = ["FINISHED", "STATES", "Chunk", "JobRunner", "JobStore", "StoreUnavailable", "open_store"]
