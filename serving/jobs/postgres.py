"""The shared job store: PostgreSQL, for several replicas behind a load balancer.

A small connection pool with short timeouts: a database that is down at boot
or later costs a job request at most a few seconds before its 503, and never
touches predictions. Sessions end transactions left idle
(``idle_in_transaction_session_timeout``), so a host lost mid-transaction
cannot keep its row locks until TCP gives up. The schema is created or
migrated under an advisory lock, so workers starting together do not collide,
lazily on the first operation that reaches the database.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from serving.jobs.store import SCHEMA, SCHEMA_VERSION, JobStore, StoreUnavailable

log = logging.getLogger("glue_tf.serving")
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 3.0
SCHEMA_LOCK = 7_240_125  # pg_advisory_lock key: glue-tf's schema migrations
CREATE_LOCK = 7_240_126  # pg_advisory_xact_lock key: job creation, for the job store's byte quota
SESSION_OPTIONS = "-c idle_in_transaction_session_timeout=10000 -c statement_timeout=15000 -c lock_timeout=5000"


class PostgresJobStore(JobStore):
    NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
    LOCK = "FOR UPDATE OF c SKIP LOCKED"
    backend = "postgresql"

    def __init__(self, url: str, max_connections: int = 4):
        from psycopg_pool import ConnectionPool

        self.url = url
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=POOL_TIMEOUT_S, open=False,
            check=ConnectionPool.check_connection, reconnect_timeout=0,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "options": SESSION_OPTIONS, "autocommit": False},
        )
        self._pool.open(wait=False)  # a database that is down at boot must not stop the worker
        try:
            self._ensure_schema()
        except StoreUnavailable as error:
            log.warning("%s; job routes answer 503 until it is back", error)

    def _sql(self, text: str) -> str:
        return super()._sql(text).replace("?", "%s")

    @contextlib.contextmanager
    def _connection(self):
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as connection:
                yield connection
            self.available = True
        except (psycopg.OperationalError, PoolTimeout) as error:
            self.available = False
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise StoreUnavailable(f"the job store (PostgreSQL) is unavailable: {first_line}") from None

    @contextlib.contextmanager
    def _transaction(self):
        self._ensure_schema()
        with self._connection() as connection:
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor

    def _serialize_creates(self, cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_LOCK,))

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock, self._connection() as connection:
            if self._schema_ready:
                return
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                for statement in SCHEMA:
                    cursor.execute(statement)
                cursor.execute("SELECT MAX(version) FROM glue_schema")
                if cursor.fetchone()[0] is None:
                    cursor.execute("INSERT INTO glue_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            self._schema_ready = True

    def close(self) -> None:
        self._pool.close(timeout=1)
