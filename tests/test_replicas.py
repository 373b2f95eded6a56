"""Two replicas of the service (separate ports and state folders) sharing one real PostgreSQL job store.

A job submitted to replica A is listed and polled on B; A is SIGKILLed (master and
workers) in the middle of a large job it was scoring, and B finishes it; the
database is killed for a few seconds, and job routes answer 503 with
``Retry-After`` while predictions go on, then jobs resume. Long: ``make test-long``.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from support.server import Server, request

pytestmark = pytest.mark.long
LEASE_S = 4
RTE = [{"sentence1": f"The committee met on day {i} to discuss the budget and the plans.",
        "sentence2": "They met." if i % 3 else "Nobody met."} for i in range(4000)]


def _replica(models, state, url, **env):
    return Server(models, state, workers=1, GLUE_TF_DATABASE_URL=url, GLUE_TF_JOB_STALE_SECONDS=LEASE_S,
                  GLUE_TF_MAX_BATCH_SIZE=8, GLUE_TF_MAX_JOB_INSTANCES=20000, GLUE_TF_MAX_BODY_BYTES=4_000_000,
                  GLUE_TF_MAX_CONCURRENT_JOBS=1, **env)


def _wait(server, job_id, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, job = request(server.base, "GET", f"/jobs/{job_id}")
        if status == 200 and job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise TimeoutError(job)


@pytest.fixture
def models(tiny_exports, tmp_path):
    folder = tmp_path / "models-run"
    shutil.copytree(tiny_exports / "models" / "rte", folder / "models" / "rte")
    return folder


def test_a_killed_replicas_job_is_finished_by_another(models, postgres, postgres_url, tmp_path):
    import psycopg

    a = _replica(models, tmp_path / "state-a", postgres_url).wait_until_up()
    b = _replica(models, tmp_path / "state-b", postgres_url).wait_until_up()
    try:
        body = {"task": "rte", "instances": RTE, "labels": [i % 2 for i in range(len(RTE))]}
        status, _, created = request(a.base, "POST", "/jobs", body)
        assert status == 202
        job_id = created["id"]
        status, _, listed = request(b.base, "GET", "/jobs?status=queued")
        assert status == 200
        status, _, polled = request(b.base, "GET", f"/jobs/{job_id}")
        assert status == 200 and polled["progress"]["total"] == len(RTE)

        # Wait until A (not B) holds a lease on this job and has recorded some chunks, then kill A whole.
        # A is frozen (SIGSTOP) before the last look, so the chunk it holds cannot finish before the kill.
        a_pids = {str(pid) for pid in a.worker_pids()}

        def a_holds_a_chunk():
            with psycopg.connect(postgres_url) as db:
                owners = {row[0].split(":")[1] for row in db.execute(
                    "SELECT claimed_by FROM glue_job_chunks WHERE job_id = %s AND status = 'running'", (job_id,))}
                done = db.execute("SELECT COUNT(*) FROM glue_job_chunks WHERE job_id = %s AND status = 'done'",
                                  (job_id,)).fetchone()[0]
            return bool(owners & a_pids) and done >= 2, (owners, done)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if a_holds_a_chunk()[0]:
                os.killpg(a.process.pid, signal.SIGSTOP)
                if a_holds_a_chunk()[0]:
                    break
                os.killpg(a.process.pid, signal.SIGCONT)
            time.sleep(0.1)
        else:
            pytest.fail(f"replica A never scored the job: owners and chunks done {a_holds_a_chunk()[1]}")
        os.killpg(a.process.pid, signal.SIGKILL)
        a.process.wait(timeout=30)

        job = _wait(b, job_id)
        assert job["status"] == "succeeded", job
        assert job["attempts"] >= 2  # A's chunk was taken over after its lease ran out
        assert job["progress"] == {"done": len(RTE), "total": len(RTE)}

        # The same job, run whole on B alone, gives the same result.
        status, _, again = request(b.base, "POST", "/jobs", body)
        alone = _wait(b, again["id"])
        assert alone["status"] == "succeeded" and alone["attempts"] == 1
        assert alone["result"] == job["result"]
    finally:
        a.stop()
        b.stop()


def test_a_database_outage_is_503_for_jobs_only_and_jobs_resume(models, postgres, postgres_url, tmp_path):
    server = _replica(models, tmp_path / "state", postgres_url).wait_until_up()
    try:
        body = {"task": "rte", "instances": RTE[:1500], "labels": [i % 2 for i in range(1500)]}
        status, _, created = request(server.base, "POST", "/jobs", body)
        assert status == 202
        time.sleep(1)
        postgres.kill()
        try:
            started = time.monotonic()
            for method, path, payload in (("GET", f"/jobs/{created['id']}", None), ("GET", "/jobs", None),
                                          ("POST", "/jobs", body)):
                status, headers, answer = request(server.base, method, path, payload, timeout=30)
                assert status == 503, (path, status, answer)
                assert int(headers["Retry-After"]) > 0 and answer["error"]["code"] == "job_store_unavailable"
            assert time.monotonic() - started < 30  # a few seconds each, not psycopg_pool's default 30
            status, _, predicted = request(server.base, "POST", "/predict/rte", {"instances": RTE[:2]})
            assert status == 200 and len(predicted["predictions"]) == 2
            assert request(server.base, "POST", "/v1/models/rte:predict", {"instances": RTE[:1]})[0] == 200
            assert request(server.base, "GET", "/healthz")[0] == 200
            status, _, ready = request(server.base, "GET", "/readyz")
            assert status == 200 and ready["job_store"] == {"backend": "postgresql", "available": False}
            time.sleep(3)
        finally:
            postgres.restart()
        job = _wait(server, created["id"])
        assert job["status"] == "succeeded" and job["progress"]["done"] == 1500
        status, _, ready = request(server.base, "GET", "/readyz")
        assert ready["job_store"]["available"] is True
        assert "Traceback" not in server.log()
    finally:
        server.stop()
