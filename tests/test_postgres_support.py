"""The throwaway PostgreSQL cluster the job store's tests run against (tests/support/postgres.py)."""

from __future__ import annotations

import os
import time

import pytest

psycopg = pytest.importorskip("psycopg")


def test_cluster_runs_sql_in_a_fresh_database(postgres, postgres_url):
    assert postgres.running and postgres.port
    assert postgres_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres.port}/test_")
    assert str(postgres.root).startswith("/tmp/glue-tf-pg-")
    if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres system user
        assert postgres.data_dir.stat().st_uid != 0
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_setting('server_encoding')").fetchone() == ("UTF8",)
        conn.execute("CREATE TABLE jobs (id text PRIMARY KEY, state text NOT NULL)")
        conn.execute("INSERT INTO jobs VALUES ('a', 'queued')")
        conn.commit()
        assert conn.execute("SELECT state FROM jobs WHERE id = 'a'").fetchone() == ("queued",)


def test_fresh_databases_are_separate(postgres):
    first, second = postgres.new_database(), postgres.new_database()
    assert first != second
    with psycopg.connect(first, autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE only_here (x int)")
    with psycopg.connect(second, autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
    with psycopg.connect(first, autocommit=True, connect_timeout=5) as conn:
        assert conn.execute("SELECT to_regclass('only_here')").fetchone() == ("only_here",)
    for url in (first, second):
        postgres.drop_database(url.rsplit("/", 1)[1])
    with pytest.raises(ValueError):
        postgres.new_database("bad; DROP DATABASE postgres")


def test_kill_refuses_connections_and_restart_keeps_port_and_data(postgres, postgres_url):
    port = postgres.port
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("CREATE TABLE jobs (id text PRIMARY KEY)")
        conn.execute("INSERT INTO jobs VALUES ('survives')")
    open_conn = psycopg.connect(postgres_url, autocommit=True, connect_timeout=5)
    try:
        postgres.kill()
        assert not postgres.running
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres_url, connect_timeout=2)
        assert time.monotonic() - started < 3
        with pytest.raises(psycopg.OperationalError):  # a connection open at the crash is broken
            open_conn.execute("SELECT 1")
    finally:
        open_conn.close()
        postgres.restart()
    assert postgres.running and postgres.port == port
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT id FROM jobs").fetchall() == [("survives",)]
