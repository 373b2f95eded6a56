"""A bounded load test of the service: correctness, errors, memory, and a worker killed mid-load.

    python bench/load_test.py --model-dir RUN --glue-dir ../shared/glue_data --requests 20000 --clients 32

Starts gunicorn (``serving/gunicorn.conf.py``, several workers) on a loopback port
over a run's exports and sends ``--requests`` ``/predict/<task>`` requests from
``--clients`` keep-alive clients: every task that has an export, 1 to 16 real dev
examples per request. Every answer is checked against the same SavedModel called
in-process on the same instance (label, and probabilities or score within 1e-4),
every worker's RSS is read after warm-up and at the end, and with
``--kill-worker-after S`` one worker is SIGKILLed S seconds in: the master must
replace it and the failed requests must be bounded by what that worker held.
Prints one JSON summary (also to ``--json-out``); exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.server import Server  # noqa: E402

from glue_tf import export  # noqa: E402
from glue_tf.data.sources import TsvSource  # noqa: E402
from glue_tf.tasks import TASKS  # noqa: E402

TOLERANCE = 1e-4


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def expected_outputs(model_dir: Path, glue_dir: str, per_task: int) -> dict:
    """Per task: a pool of dev instances and each one's in-process prediction."""
    import tensorflow as tf

    pools = {}
    source = TsvSource(glue_dir)
    for name, task in TASKS.items():
        path = export.latest(model_dir, name)
        if path is None or task.model_task:
            continue
        signature, _ = export.load(path)
        examples = source.examples(task, task.dev_splits[0])[:per_task]
        instances = [{f: e[f] for f in task.text_features} for e in examples]
        outputs = signature(**{f: tf.constant([i[f] for i in instances]) for f in task.text_features})
        if task.is_regression:
            answers = [{"score": float(s)} for s in outputs["score"].numpy()]
        else:
            answers = [{"label_id": int(l), "probabilities": [float(p) for p in ps]}
                       for l, ps in zip(outputs["label_id"].numpy(), outputs["probabilities"].numpy())]
        pools[name] = (task, instances, answers)
    return pools


def matches(task, got: dict, want: dict) -> bool:
    if task.is_regression:
        return abs(got["score"] - want["score"]) <= TOLERANCE
    probabilities = [got["probabilities"][n] for n in task.label_names]
    close = all(abs(a - b) <= TOLERANCE for a, b in zip(probabilities, want["probabilities"]))
    ranked = sorted(want["probabilities"], reverse=True)
    near_tie = len(ranked) > 1 and ranked[0] - ranked[1] <= TOLERANCE
    return close and (near_tie or got["label_id"] == want["label_id"])


def run(args) -> dict:
    pools = expected_outputs(Path(args.model_dir), args.glue_dir, args.pool)
    state = Path(tempfile.mkdtemp(prefix="glue-tf-load-"))
    server = Server(args.model_dir, state / "state", workers=args.workers, GLUE_TF_THREADS=args.threads,
                    GLUE_TF_REQUEST_LOG="0").wait_until_up()
    counts = {"ok": 0, "http_5xx": 0, "http_4xx": 0, "connection_errors": 0, "mismatches": 0}
    failures_after_kill = []
    lock = threading.Lock()
    remaining = [args.requests]
    killed = {}
    started = time.monotonic()
    rss_start = {}

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def client(seed):
        rng = random.Random(seed)
        conn = None
        while take():
            name = rng.choice(sorted(pools))
            task, instances, answers = pools[name]
            picked = rng.sample(range(len(instances)), rng.randint(1, min(16, len(instances))))
            body = json.dumps({"instances": [instances[i] for i in picked]})
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                conn.request("POST", f"/predict/{name}", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    counts["connection_errors"] += 1
                    if killed:
                        failures_after_kill.append(time.monotonic() - killed["at"])
                conn = None  # reconnect; the kill closed this one
                continue
            with lock:
                if response.status >= 500:
                    counts["http_5xx"] += 1
                elif response.status >= 400:
                    counts["http_4xx"] += 1
                else:
                    predictions = json.loads(payload)["predictions"]
                    bad = sum(not matches(task, got, answers[i]) for got, i in zip(predictions, picked))
                    counts["mismatches"] += bad + abs(len(predictions) - len(picked))
                    counts["ok"] += 1

    def warm_up_then_watch():
        time.sleep(args.warm_up)
        rss_start.update({pid: rss_mib(pid) for pid in server.worker_pids()})
        if args.kill_worker_after:
            time.sleep(max(0.0, args.kill_worker_after - args.warm_up))
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            killed.update(pid=victim, at=time.monotonic(), requests_done=args.requests - remaining[0])

    watcher = threading.Thread(target=warm_up_then_watch, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    workers_end = server.worker_pids()
    rss_end = {pid: rss_mib(pid) for pid in workers_end}
    server.stop()

    survivors = [pid for pid in rss_start if pid in rss_end and pid != killed.get("pid")]
    growth = {pid: rss_end[pid] - rss_start[pid] for pid in survivors if rss_start[pid] and rss_end[pid]}
    summary = {
        "requests": args.requests, "clients": args.clients, "workers": args.workers, "tasks": sorted(pools),
        "seconds": round(elapsed, 1), "requests_per_second": round(args.requests / elapsed, 1), **counts,
        "rss_mib_after_warm_up": {str(k): round(v, 1) for k, v in rss_start.items() if v},
        "rss_mib_at_end": {str(k): round(v, 1) for k, v in rss_end.items() if v},
        "max_rss_growth_mib": round(max(growth.values(), default=0.0), 1),
    }
    if killed:
        summary["killed_worker"] = {
            "pid": killed["pid"], "after_requests": killed["requests_done"],
            "replaced": killed["pid"] not in workers_end and len(workers_end) == args.workers,
            "failed_requests": len(failures_after_kill),
        }
    checks = {
        "no 5xx": counts["http_5xx"] == 0,
        "no 4xx": counts["http_4xx"] == 0,
        "every answer matches in-process": counts["mismatches"] == 0,
        "all requests answered or failed by the kill": counts["ok"] + counts["connection_errors"] == args.requests,
        f"RSS growth under {args.max_rss_growth} MiB": summary["max_rss_growth_mib"] <= args.max_rss_growth,
    }
    if killed:
        checks["killed worker replaced"] = summary["killed_worker"]["replaced"]
        # Each client has one request in flight on one connection: only those on the killed worker fail.
        checks["failures bounded by the requests in flight"] = len(failures_after_kill) <= args.clients
    else:
        checks["no connection errors"] = counts["connection_errors"] == 0
    summary["checks"] = checks
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder")
    parser.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "../shared/glue_data"))
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--pool", type=int, default=200, help="dev examples per task to draw requests from")
    parser.add_argument("--warm-up", type=float, default=5.0, help="seconds before the first RSS reading")
    parser.add_argument("--kill-worker-after", type=float, default=0.0, help="SIGKILL one worker after S seconds")
    parser.add_argument("--max-rss-growth", type=float, default=64.0, help="MiB a surviving worker may grow")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    summary = run(args)
    print(json.dumps(summary, indent=2))
    if args.json_out:
        with open(args.json_out, "a", encoding="utf-8") as sink:
            sink.write(json.dumps({"kind": "load_test", "date": time.strftime("%Y-%m-%d"), **summary}) + "\n")
    return 0 if all(summary["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
