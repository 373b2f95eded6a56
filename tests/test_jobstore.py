"""One job-store suite, run on both back-ends: SQLite (embedded) and a real PostgreSQL server.

Leases, takeovers, results recorded once, assembly once, cancel, listing,
retention, and concurrency across "hosts" (owners in threads). PostgreSQL runs
as a throwaway cluster (``support.postgres``); where its binaries are missing
the PostgreSQL half skips, except under CI, which installs them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from serving.errors import ApiError
from serving.jobs import StoreUnavailable
from serving.jobs.store import StoreFull
from serving.jobs.sqlite import SqliteJobStore

CHUNKS = [("rte", "validation", 0, 4), ("rte", "validation", 4, 8), ("stsb", "validation", 0, 3)]
QUOTA = 1 << 20  # bytes of request bodies the store holds at once


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = SqliteJobStore(tmp_path / "jobs.sqlite3")
    else:
        from serving.jobs.postgres import PostgresJobStore

        made = PostgresJobStore(request.getfixturevalue("postgres_url"))
    yield made
    made.close()


def test_a_job_is_created_listed_and_read_back(store):
    job_id = store.create({"task": "rte", "instances": ["x"]}, CHUNKS, QUOTA)
    job = store.get(job_id, with_request=True)
    assert job["status"] == "queued" and job["progress"] == {"done": 0, "total": 11}
    assert job["request"] == {"task": "rte", "instances": ["x"]} and job["attempts"] == 0
    other = store.create({"task": "cola"}, [("cola", "validation", 0, 2)], QUOTA)
    assert [j["id"] for j in store.list()] == [other, job_id]  # newest first
    assert [j["id"] for j in store.list(status="queued", limit=1)] == [other]
    assert store.list(status="succeeded") == []
    assert store.counts() == {"queued": 2, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert store.get("0" * 32) is None


def test_chunks_are_leased_one_owner_at_a_time_and_recorded_once(store):
    job_id = store.create({}, CHUNKS, QUOTA)
    first = store.claim("host-a", lease_seconds=60)
    second = store.claim("host-b", lease_seconds=60)
    assert (first.job_id, first.idx, first.start, first.stop, first.claims) == (job_id, 0, 0, 4, 1)
    assert second.idx == 1  # host-a's lease keeps chunk 0 from host-b
    assert store.get(job_id)["status"] == "running"
    assert store.record(first, "host-b", [0, 1, 0, 1]) is False  # not host-b's lease
    assert store.record(first, "host-a", [0, 1, 0, 1]) is True
    assert store.record(first, "host-a", [1, 1, 1, 1]) is False  # recorded once
    assert store.get(job_id)["progress"]["done"] == 4
    assert store.renew(second, "host-b", 60) and not store.renew(second, "host-a", 60)


def test_a_dead_owners_chunk_is_taken_over_after_its_lease(store):
    job_id = store.create({}, CHUNKS[:1], QUOTA)
    lost = store.claim("host-a", lease_seconds=0.3)
    assert store.claim("host-b", lease_seconds=60) is None  # leased
    time.sleep(0.6)
    taken = store.claim("host-b", lease_seconds=60)
    assert (taken.idx, taken.claims) == (lost.idx, 2)
    assert store.get(job_id)["attempts"] == 2
    assert store.record(lost, "host-a", [0, 0, 0, 0]) is False  # the dead owner's late result is refused
    assert store.renew(lost, "host-a", 60) is False
    assert store.record(taken, "host-b", [1, 1, 1, 1]) is True
    assert store.complete_jobs() == [job_id]
    assert store.chunk_results(job_id) == [("rte", "validation", 0, [1, 1, 1, 1])]
    assert store.finish(job_id, {"score": 1}) is True
    assert store.finish(job_id, {"score": 2}) is False  # assembled once
    job = store.get(job_id)
    assert job["status"] == "succeeded" and job["result"] == {"score": 1} and job["finished_at"] is not None
    assert store.complete_jobs() == []


def test_concurrent_owners_score_every_chunk_exactly_once(store):
    chunks = [("rte", "validation", 10 * i, 10 * i + 10) for i in range(40)]
    job_id = store.create({}, chunks, QUOTA)
    claimed: dict[str, list[int]] = {}

    def host(name):
        mine = claimed.setdefault(name, [])
        while (chunk := store.claim(name, lease_seconds=60)) is not None:
            mine.append(chunk.idx)
            assert store.record(chunk, name, [chunk.idx])

    threads = [threading.Thread(target=host, args=(f"host-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    everything = sorted(idx for mine in claimed.values() for idx in mine)
    assert everything == list(range(40))  # none twice, none lost
    assert store.get(job_id)["progress"] == {"done": 400, "total": 400}
    assert [result for _, _, _, result in store.chunk_results(job_id)] == [[i] for i in range(40)]


def test_cancel_stops_the_chunks_and_a_finished_job_stays(store):
    job_id = store.create({}, CHUNKS, QUOTA)
    assert store.cancel(job_id) is True
    assert store.claim("host-a", 60) is None
    assert store.get(job_id)["status"] == "cancelled"
    assert store.cancel(job_id) is False
    done = store.create({}, CHUNKS[:1], QUOTA)
    chunk = store.claim("host-a", 60)
    store.record(chunk, "host-a", [1, 1, 1, 1])
    store.finish(done, {})
    assert store.cancel(done) is False and store.get(done)["status"] == "succeeded"


def test_the_byte_quota_holds_and_ending_a_job_frees_its_request(store):
    body = {"task": "rte", "instances": ["x" * 1000]}
    size = len(json.dumps(body))
    quota = 3 * size
    jobs = [store.create(body, CHUNKS[:1], quota) for _ in range(3)]
    with pytest.raises(StoreFull) as full:
        store.create(body, CHUNKS[:1], quota)
    assert full.value.status == 429 and full.value.headers["Retry-After"]
    with pytest.raises(ApiError) as too_large:
        store.create({"task": "rte", "instances": ["x" * 3 * size]}, CHUNKS[:1], quota)
    assert too_large.value.status == 413 and "GLUE_TF_JOB_STORE_MAX_BYTES" in too_large.value.message

    assert store.cancel(jobs[0])  # cancelled: its request goes, room for one more
    assert store.get(jobs[0], with_request=True)["request"] is None
    store.create(body, CHUNKS[:1], quota)
    chunk = store.claim("host-a", 60)
    store.record(chunk, "host-a", [1, 1, 1, 1])
    store.finish(chunk.job_id, {"score": 1})  # succeeded: its request goes, its result stays
    finished = store.get(chunk.job_id, with_request=True)
    assert finished["request"] is None and finished["result"] == {"score": 1}
    assert store.fail(jobs[2], "boom") and store.get(jobs[2], with_request=True)["request"] is None
    for _ in range(2):
        store.create(body, CHUNKS[:1], quota)
    with pytest.raises(StoreFull):
        store.create(body, CHUNKS[:1], quota)


def test_failed_and_purged_jobs(store):
    failing = store.create({}, CHUNKS[:1], QUOTA)
    assert store.fail(failing, "boom") is True and store.fail(failing, "again") is False
    assert store.get(failing)["error"] == "boom"
    keep = store.create({}, CHUNKS[:1], QUOTA)
    assert store.purge(older_than_seconds=3600) == 0  # finished just now: kept
    time.sleep(0.3)
    assert store.purge(older_than_seconds=0.1) == 1
    assert store.get(failing) is None and store.get(keep)["status"] == "queued"


def test_postgres_down_is_a_prompt_503_and_it_recovers(postgres, postgres_url):
    from serving.jobs.postgres import PostgresJobStore

    store = PostgresJobStore(postgres_url)
    try:
        job_id = store.create({}, CHUNKS[:1], QUOTA)
        postgres.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            store.get(job_id)
        assert time.monotonic() - started < 10
        assert refused.value.status == 503 and refused.value.headers["Retry-After"]
        assert store.available is False
        postgres.restart()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert store.get(job_id)["status"] == "queued"
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not reconnect"
                time.sleep(0.5)
        assert store.available is True
    finally:
        store.close()


def test_postgres_down_at_boot_does_not_stop_the_store(postgres, postgres_url):
    from serving.jobs.postgres import PostgresJobStore

    postgres.kill()
    try:
        started = time.monotonic()
        store = PostgresJobStore(postgres_url)  # must not raise or hang
        assert time.monotonic() - started < 10
        with pytest.raises(StoreUnavailable):
            store.counts()
    finally:
        postgres.restart()
    deadline = time.monotonic() + 30
    while True:
        try:
            assert store.counts()["queued"] == 0  # the schema is created once the database is back
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    store.close()



def test_workers_starting_together_all_open_a_new_sqlite_store(tmp_path):
    """Gunicorn's workers open the store at once: 8 processes open a new file together, 20 times over."""
    script = Path(__file__).parent / "support" / "open_stores_together.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "8", "20"], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    assert not errors, errors[:3]
