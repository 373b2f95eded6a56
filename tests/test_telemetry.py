"""serving.telemetry: exact samples in one process, and sums across processes in gunicorn's mode.

The multiprocess checks run in subprocesses: prometheus_client chooses its mode when first
imported, and this test process must stay in single-process mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from serving import telemetry
from serving.telemetry import Telemetry

REPO_ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO_ROOT / "serving" / "gunicorn.conf.py"

if telemetry.multiprocess_enabled():  # pragma: no cover - only when the shell exported the variable
    pytest.skip("PROMETHEUS_MULTIPROC_DIR was set when pytest started", allow_module_level=True)


def samples(body: bytes) -> dict[tuple[str, frozenset], float]:
    """{(sample name, frozenset of label items): value} for a /metrics body."""
    out = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = sample.value
    return out


def value(found: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"{name}{labels} missing; have {sorted(k for k in found if k[0] == name)}"
    return found[key]


def named(found: dict, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


PREDICT = dict(endpoint="/predict", method="POST", status="200", task="rte", model_version="1")


# --- single process ------------------------------------------------------------------------


def test_single_process_exact_samples():
    t = Telemetry()
    assert t.multiprocess is False
    for seconds in (0.003, 0.02, 0.3):
        t.observe_request("/predict", "POST", 200, seconds, task="rte", model_version=1)
    t.observe_request("/predict", "POST", 422, 0.001, task="rte", model_version=1)
    t.observe_request("/healthz", "GET", 200, 0.001)
    t.observe_batch("rte", 1, 3)
    t.observe_batch("rte", 1, 20)
    t.queue_changed("rte", 1, 5)
    t.queue_changed("rte", 1, -3)
    t.set_job_counts({"queued": 1, "running": 0, "succeeded": 4, "failed": 0})

    body, content_type = t.render()
    assert isinstance(body, bytes)
    assert content_type == CONTENT_TYPE_LATEST
    found = samples(body)

    assert value(found, "glue_tf_requests_total", **PREDICT) == 3
    assert value(found, "glue_tf_requests_total", **{**PREDICT, "status": "422"}) == 1
    assert value(found, "glue_tf_requests_total", endpoint="/healthz", method="GET", status="200",
                 task="", model_version="") == 1
    assert len(named(found, "glue_tf_requests_total")) == 3

    assert value(found, "glue_tf_request_seconds_count", endpoint="/predict", task="rte") == 4
    assert value(found, "glue_tf_request_seconds_sum", endpoint="/predict", task="rte") == pytest.approx(0.324)
    assert value(found, "glue_tf_request_seconds_bucket", endpoint="/predict", task="rte", le="0.005") == 2
    assert value(found, "glue_tf_request_seconds_bucket", endpoint="/predict", task="rte", le="0.025") == 3
    assert value(found, "glue_tf_request_seconds_bucket", endpoint="/predict", task="rte", le="+Inf") == 4
    assert value(found, "glue_tf_request_seconds_count", endpoint="/healthz", task="") == 1
    les = {dict(labels)["le"] for labels in named(found, "glue_tf_request_seconds_bucket")}
    assert les == {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"}

    assert value(found, "glue_tf_batch_size_count", task="rte", model_version="1") == 2
    assert value(found, "glue_tf_batch_size_sum", task="rte", model_version="1") == 23
    assert value(found, "glue_tf_batch_size_bucket", task="rte", model_version="1", le="4.0") == 1
    assert value(found, "glue_tf_batch_size_bucket", task="rte", model_version="1", le="16.0") == 1
    assert value(found, "glue_tf_batch_size_bucket", task="rte", model_version="1", le="32.0") == 2

    assert value(found, "glue_tf_queue_instances", task="rte", model_version="1") == 2

    assert named(found, "glue_tf_jobs") == {
        frozenset({("state", "queued")}): 1, frozenset({("state", "running")}): 0,
        frozenset({("state", "succeeded")}): 4, frozenset({("state", "failed")}): 0,
    }
    assert value(found, "glue_tf_process_resident_memory_bytes") > 1_000_000
    assert value(found, "glue_tf_process_cpu_seconds_total") > 0
    assert found[("glue_tf_process_cpu_seconds_total", frozenset())] == value(found, "glue_tf_process_cpu_seconds_total")
    build = named(found, "glue_tf_build_info")
    assert len(build) == 1 and list(build.values()) == [1]
    versions = dict(next(iter(build)))
    assert set(versions) == {"glue_tf", "tensorflow", "tensorflow_text", "keras", "python"}
    assert versions["python"] == ".".join(map(str, sys.version_info[:3])) and versions["glue_tf"]
    assert versions["tensorflow"].count(".") == 2


def test_the_cpu_counter_only_grows():
    t = Telemetry()
    before = value(samples(t.render()[0]), "glue_tf_process_cpu_seconds_total")
    sum(i * i for i in range(2_000_000))  # some CPU time
    after = value(samples(t.render()[0]), "glue_tf_process_cpu_seconds_total")
    assert after > before


def test_label_values_come_from_known_sets():
    """Random methods, unknown tasks and odd statuses add no series beyond one ``other`` each."""
    import random
    import string

    t = Telemetry()
    rng = random.Random(7)
    for _ in range(50):
        method = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 12)))
        t.observe_request("unmatched", method, 405, 0.001)
        t.observe_request("/predict/<task_name>", "POST", 404, 0.001, task=method.lower())
    t.observe_request("unmatched", "GET", 999, 0.001)
    found = samples(t.render()[0])
    series = named(found, "glue_tf_requests_total")
    assert len(series) == 3
    assert value(found, "glue_tf_requests_total", endpoint="unmatched", method="other", status="405", task="",
                 model_version="") == 50  # every random method is "other"
    assert value(found, "glue_tf_requests_total", endpoint="/predict/<task_name>", method="POST", status="404",
                 task="other", model_version="") == 50
    assert value(found, "glue_tf_requests_total", endpoint="unmatched", method="GET", status="other", task="",
                 model_version="") == 1
    assert len(named(found, "glue_tf_request_seconds_count")) == 2


def test_job_counts_replace_the_previous_ones():
    t = Telemetry()
    t.set_job_counts({"queued": 2, "running": 1, "succeeded": 4})
    t.set_job_counts({"queued": 0, "succeeded": 7})
    found = samples(t.render()[0])
    assert named(found, "glue_tf_jobs") == {
        frozenset({("state", "queued")}): 0, frozenset({("state", "running")}): 0,
        frozenset({("state", "succeeded")}): 7,
    }


def test_two_instances_do_not_collide():
    first, second = Telemetry(), Telemetry()  # the default registry would raise "Duplicated timeseries"
    first.observe_request("/predict", "POST", 200, 0.01, task="rte", model_version=1)
    first.observe_request("/predict", "POST", 200, 0.01, task="rte", model_version=1)
    second.observe_request("/predict", "POST", 200, 0.01, task="rte", model_version=1)
    first.queue_changed("rte", 1, 4)
    assert value(samples(first.render()[0]), "glue_tf_requests_total", **PREDICT) == 2
    found = samples(second.render()[0])
    assert value(found, "glue_tf_requests_total", **PREDICT) == 1
    assert named(found, "glue_tf_queue_instances") == {}


def test_process_gauges_refresh_at_most_once_a_second(monkeypatch):
    calls = []  # this thread's reads only: an earlier test's Telemetry(refresh_every=...) may still be refreshing
    monkeypatch.setattr(telemetry, "_resident_bytes",
                        lambda: (threading.current_thread() is threading.main_thread() and calls.append(1)) or 123_456_789)
    t = Telemetry()
    assert len(calls) == 1
    for _ in range(20):
        t.observe_request("/predict", "POST", 200, 0.01)
    assert len(calls) == 1  # within the second after the last refresh
    t._last_process_refresh -= 2.0
    t.observe_request("/predict", "POST", 200, 0.01)
    t.observe_request("/predict", "POST", 200, 0.01)
    assert len(calls) == 2
    body, _ = t.render()  # always fresh
    assert len(calls) == 3
    assert value(samples(body), "glue_tf_process_resident_memory_bytes") == 123_456_789


# --- multiprocess (gunicorn) ---------------------------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys
    from serving.telemetry import Telemetry
    requests, queued, jobs = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    t = Telemetry()
    assert t.multiprocess
    for _ in range(requests):
        t.observe_request("/predict", "POST", 200, 0.02, task="rte", model_version=1)
    t.observe_batch("rte", 1, requests)
    t.queue_changed("rte", 1, queued)
    t.set_job_counts(jobs)
    print(os.getpid())
""")

RENDER = textwrap.dedent("""
    import sys
    from serving.telemetry import Telemetry
    t = Telemetry()
    body, content_type = t.render()
    sys.stdout.buffer.write(body)
""")


def _run(code: str, metrics_dir: Path, *args: str) -> bytes:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    env.pop("prometheus_multiproc_dir", None)
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_process_gauges_refresh_on_a_timer_without_requests(monkeypatch):
    """A worker the load balancer sends nothing must not report its boot-time memory for ever."""
    import time

    rss = iter(range(1_000_000, 2_000_000_000, 1_000_000))
    monkeypatch.setattr(telemetry, "_resident_bytes", lambda: next(rss))
    from prometheus_client import generate_latest

    t = Telemetry(refresh_every=0.05)
    def current():  # read without render(), which would refresh the gauges itself
        return value(samples(generate_latest(t.registry)), "glue_tf_process_resident_memory_bytes")

    first = current()
    time.sleep(0.5)
    assert current() > first  # refreshed with no request and no scrape


def test_multiprocess_counters_add_up_and_dead_workers_leave_live_gauges(tmp_path):
    from prometheus_client.multiprocess import mark_process_dead

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    pid_a = int(_run(WORKER, metrics_dir, "2", "4", json.dumps({"queued": 3, "succeeded": 4})))
    pid_b = int(_run(WORKER, metrics_dir, "3", "1", json.dumps({"queued": 1, "succeeded": 7})))
    assert pid_a != pid_b

    found = samples(_run(RENDER, metrics_dir))
    assert value(found, "glue_tf_requests_total", **PREDICT) == 5
    assert value(found, "glue_tf_request_seconds_count", endpoint="/predict", task="rte") == 5
    assert value(found, "glue_tf_request_seconds_bucket", endpoint="/predict", task="rte", le="0.025") == 5
    assert value(found, "glue_tf_request_seconds_bucket", endpoint="/predict", task="rte", le="0.01") == 0
    assert value(found, "glue_tf_batch_size_count", task="rte", model_version="1") == 2
    assert value(found, "glue_tf_batch_size_sum", task="rte", model_version="1") == 5
    assert value(found, "glue_tf_queue_instances", task="rte", model_version="1") == 5  # livesum
    # mostrecent: the last worker to set a state wins, there is no pid label
    assert named(found, "glue_tf_jobs") == {frozenset({("state", "queued")}): 1,
                                            frozenset({("state", "succeeded")}): 7}
    # 'liveall': one series per live process (both workers and the renderer), labelled by pid
    rss = named(found, "glue_tf_process_resident_memory_bytes")
    pids = {dict(labels)["pid"] for labels in rss}
    assert {str(pid_a), str(pid_b)} <= pids and len(pids) == 3
    assert all(v > 1_000_000 for v in rss.values())
    # a counter: every process's CPU seconds in one sum, a dead worker's included
    assert value(found, "glue_tf_process_cpu_seconds_total") > 0

    mark_process_dead(pid_a, path=str(metrics_dir))  # what child_exit does in the gunicorn master
    found = samples(_run(RENDER, metrics_dir))
    # 'liveall': a dead worker's memory and CPU are no longer reported
    assert str(pid_a) not in {dict(labels)["pid"] for labels in named(found, "glue_tf_process_resident_memory_bytes")}
    assert value(found, "glue_tf_queue_instances", task="rte", model_version="1") == 1  # only B's
    assert value(found, "glue_tf_requests_total", **PREDICT) == 5  # A's requests still count
    assert value(found, "glue_tf_request_seconds_count", endpoint="/predict", task="rte") == 5


def test_gunicorn_conf_sets_up_the_multiprocess_folder(tmp_path):
    """The config file, executed as gunicorn does, in a fresh process (it sets os.environ)."""
    state_dir = tmp_path / "state"
    code = textwrap.dedent("""
        import json, os, runpy, sys, types
        cfg = runpy.run_path(sys.argv[1])
        folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        made = os.path.isdir(folder)
        open(os.path.join(folder, "counter_1.db"), "w").close()
        cfg["on_starting"](None)
        wiped = os.listdir(folder) == []
        for name in ("counter_42.db", "gauge_livesum_42.db", "gauge_liveall_42.db"):
            open(os.path.join(folder, name), "w").close()
        cfg["child_exit"](None, types.SimpleNamespace(pid=42))
        print(json.dumps({"folder": folder, "made": made, "wiped": wiped,
                          "after_exit": sorted(os.listdir(folder))}))
    """)
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env["GLUE_TF_STATE_DIR"] = str(state_dir)
    done = subprocess.run([sys.executable, "-c", code, str(GUNICORN_CONF)], cwd=REPO_ROOT, env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["folder"] == str(state_dir / "metrics")
    assert report["made"] and report["wiped"]
    assert report["after_exit"] == ["counter_42.db"]  # live gauges (livesum, liveall) of the dead worker go
