"""The embedded job store: one SQLite file in the state folder, shared by the workers of one host."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from serving.jobs.store import SCHEMA, SCHEMA_VERSION, JobStore, StoreUnavailable


class SqliteJobStore(JobStore):
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    backend = "sqlite"
    BUSY_TIMEOUT_S = 30

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._use_write_ahead_log()
        with self._transaction() as cursor:
            for statement in SCHEMA:
                cursor.execute(statement)
            if cursor.execute("SELECT COUNT(*) FROM glue_schema").fetchone()[0] == 0:
                cursor.execute("INSERT INTO glue_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    def _use_write_ahead_log(self):
        """Switches the file to write-ahead logging, which the file keeps, before any transaction.

        Workers that start together all make this switch on a new file, and SQLite answers
        the ones that lose the race "database is locked" at once, without waiting out the busy
        timeout (5 of 160 processes opening new files 8 at a time; a 2-worker gunicorn failed to
        boot). So the switch is retried.
        """
        deadline = time.monotonic() + self.BUSY_TIMEOUT_S
        while True:
            try:
                with contextlib.closing(self._connect()) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    self.available = False
                    raise StoreUnavailable(f"the job store ({self.path}) is unavailable: {error}") from None
                time.sleep(0.05)

    def _connect(self):
        try:
            return sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as error:
            self.available = False
            raise StoreUnavailable(f"the job store ({self.path}) cannot be opened: {error}") from None

    @contextlib.contextmanager
    def _transaction(self):
        """One connection per operation; ``BEGIN IMMEDIATE`` takes the write lock up front (no upgrade deadlocks)."""
        db = self._connect()
        try:
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
