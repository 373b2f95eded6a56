"""The embedded job store: one SQLite file in the state folder, shared by the workers of one host."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from serving.jobs.store import SCHEMA, SCHEMA_VERSION, JobStore, StoreUnavailable


class SqliteJobStore(JobStore):
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    backend = "sqlite"

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as cursor:
            for statement in SCHEMA:
                cursor.execute(statement)
            if cursor.execute("SELECT COUNT(*) FROM glue_schema").fetchone()[0] == 0:
                cursor.execute("INSERT INTO glue_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    @contextlib.contextmanager
    def _transaction(self):
        """One connection per operation; ``BEGIN IMMEDIATE`` takes the write lock up front (no upgrade deadlocks)."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as error:
            self.available = False
            raise StoreUnavailable(f"the job store ({self.path}) cannot be opened: {error}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")
            cursor = db.cursor()
            try:
                yield cursor
            except BaseException:
                db.rollback()
                raise
            db.commit()
            self.available = True
        except sqlite3.OperationalError as error:
            self.available = False
            raise StoreUnavailable(f"the job store ({self.path}) is unavailable: {error}") from None
        finally:
            db.close()
