"""A bounded load test of the service: correctness, errors, hostile input, memory, and a worker killed mid-load.

    python bench/load_test.py --model-dir RUN --glue-dir ../shared/glue_data --requests 20000 --clients 32
    python bench/load_test.py --model-dir RUN --requests 3000 --clients 32 --hostile-fraction 0.33

Starts gunicorn (``serving/gunicorn.conf.py``, several workers) on a loopback port
over a run's exports and sends ``--requests`` requests from ``--clients``
keep-alive clients, each to ``/predict/<task>`` or (``--v1-fraction``) TF
Serving's ``/v1/models/<task>:predict``: every task that has an export, 1 to 16
instances per request, real dev examples with ``--glue-dir``, else a built-in
list of English and non-English sentences (so it runs without GLUE data). Every
answer is checked against the same SavedModel called in-process on the same
instance (label, and probabilities or score within 1e-4), every worker's RSS is
read after warm-up and at the end, and with ``--kill-worker-after S`` one worker
is SIGKILLed S seconds in: the master must replace it and the failed requests
must be bounded by what that worker held.

With ``--hostile-fraction F`` that fraction of requests is hostile, drawn from
``HOSTILE_KINDS`` and sent as raw bytes: broken or truncated JSON, lone UTF-16
surrogates, wrong types, missing or extra fields, too many instances, texts and
bodies over the limits (set low here, so they are cheap), unknown tasks, empty
bodies, invalid UTF-8 in ``{"b64": ...}`` and an unknown ``signature_name``.
Each must get a 4xx with a JSON error body (``/predict``: ``{"error": {"code",
"message"}}``; ``/v1``: TF Serving's ``{"error": "<message>"}``), and no request
of the run may get a 5xx or a dropped connection: a refusal that says keep-alive
must leave the connection usable for the client's next request. A valid body sent with a non-JSON content type is
drawn among them too, and must be answered like any valid request (TF Serving
ignores the content type). Counts per kind and status go into the summary.

Prints one JSON summary (also to ``--json-out``); exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.server import Server  # noqa: E402
from support.tiny import SENTENCES  # noqa: E402

from glue_tf import export  # noqa: E402
from glue_tf.tasks import TASKS  # noqa: E402

TOLERANCE = 1e-4
# The server's limits for the run: low, so that the hostile requests over them are cheap to send.
MAX_INSTANCES = 32
MAX_TEXT_CHARS = 1000
MAX_BODY_BYTES = 128 * 1024
LIMITS_ENV = {"GLUE_TF_MAX_INSTANCES": MAX_INSTANCES, "GLUE_TF_MAX_TEXT_CHARS": MAX_TEXT_CHARS,
              "GLUE_TF_MAX_BODY_BYTES": MAX_BODY_BYTES}
PREDICT, V1 = "/predict", "/v1"
# Without --glue-dir: SENTENCES and these, which keep non-ASCII text in every run.
UNICODE_SENTENCES = [
    "Le café était très bon, mais l'addition était salée.",
    "Der Bäcker verkauft frisches Brot in Zürich.",
    "The naïve student asked about the résumé.",
    "I love this movie 😀👍🏽 so much!",
    "这是一个中文句子。",
    "日本語の文も読めますか？",
    "Ελληνικά γράμματα και λέξεις.",
    "Привет, как дела?",
    "Emoji only: 🎉🎉🎉",
    "Tabs\tand  double  spaces, and an ellipsis…",
]
# Hostile kinds: those for every endpoint, then those only TF Serving's predict has. The one
# "valid" kind is a good body sent with a non-JSON content type: it must be answered.
HOSTILE_KINDS = [
    "invalid_json", "truncated_json", "lone_surrogate", "surrogate_in_long_text", "text_is_number",
    "instances_not_list", "body_is_list", "body_is_null", "missing_field", "extra_field", "missing_instances",
    "too_many_instances", "text_too_long", "body_too_large", "unknown_task", "empty_body",
    "non_json_content_type",
]
V1_ONLY_KINDS = ["b64_invalid_utf8", "unknown_signature_name"]
VALID_KINDS = {"non_json_content_type"}
NON_JSON_TYPES = ["text/plain", "application/x-www-form-urlencoded", None]  # None: no Content-Type at all


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def builtin_instances(task, count: int) -> list[dict]:
    """``count`` instances of ``task`` from the built-in sentences (pairs: two different sentences)."""
    texts = SENTENCES + UNICODE_SENTENCES
    fields = task.text_features
    if len(fields) == 1:
        return [{fields[0]: texts[i % len(texts)]} for i in range(count)]
    return [{fields[0]: texts[i % len(texts)], fields[1]: texts[(i * 7 + 3) % len(texts)]} for i in range(count)]


def expected_outputs(model_dir: Path, glue_dir: str | None, per_task: int) -> dict:
    """Per task: a pool of instances (dev examples, or built-in texts) and each one's in-process prediction."""
    import tensorflow as tf

    pools = {}
    source = None
    if glue_dir:
        from glue_tf.data.sources import TsvSource

        source = TsvSource(glue_dir)
    for name, task in TASKS.items():
        path = export.latest(model_dir, name)
        if path is None or task.model_task:
            continue
        signature, _ = export.load(path)
        if source is not None:
            examples = source.examples(task, task.dev_splits[0])[: 2 * per_task]
            instances = [{f: e[f] for f in task.text_features} for e in examples]
            # A valid request stays inside the run's limits (the over-long text is a hostile kind).
            instances = [i for i in instances if all(len(t) <= MAX_TEXT_CHARS for t in i.values())][:per_task]
        else:
            instances = builtin_instances(task, per_task)
        outputs = signature(**{f: tf.constant([i[f] for i in instances]) for f in task.text_features})
        if task.is_regression:
            answers = [{"score": float(s)} for s in outputs["score"].numpy()]
        else:
            answers = [{"label_id": int(l), "probabilities": [float(p) for p in ps]}
                       for l, ps in zip(outputs["label_id"].numpy(), outputs["probabilities"].numpy())]
        pools[name] = (task, instances, answers)
    return pools


def matches(task, got: dict, want: dict) -> bool:
    """One prediction of either endpoint (``/predict``: probabilities by label name; ``/v1``: a list)."""
    try:
        if task.is_regression:
            return abs(got["score"] - want["score"]) <= TOLERANCE
        probabilities = got["probabilities"]
        if isinstance(probabilities, dict):
            probabilities = [probabilities[n] for n in task.label_names]
        if len(probabilities) != len(want["probabilities"]):
            return False
        close = all(abs(a - b) <= TOLERANCE for a, b in zip(probabilities, want["probabilities"]))
        ranked = sorted(want["probabilities"], reverse=True)
        near_tie = len(ranked) > 1 and ranked[0] - ranked[1] <= TOLERANCE
        return close and (near_tie or got["label_id"] == want["label_id"])
    except (KeyError, TypeError, IndexError):
        return False


def good_error_body(endpoint: str, content_type: str, payload: bytes) -> bool:
    """``/predict``: ``{"error": {"code": str, "message": str}}``; ``/v1``: TF Serving's ``{"error": str}``."""
    if not content_type.startswith("application/json"):
        return False
    try:
        body = json.loads(payload)
    except ValueError:
        return False
    if not isinstance(body, dict) or "error" not in body:
        return False
    if endpoint == V1:
        return isinstance(body["error"], str) and bool(body["error"])
    error = body["error"]
    return isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)


def path_for(endpoint: str, task_name: str) -> str:
    return f"/predict/{task_name}" if endpoint == PREDICT else f"/v1/models/{task_name}:predict"


def valid_request(rng, endpoint, name, pools):
    """``(path, body bytes, picked pool indices)``; on ``/v1`` some texts go as ``{"b64": ...}``."""
    task, instances, _ = pools[name]
    picked = rng.sample(range(len(instances)), rng.randint(1, min(16, len(instances))))
    rows = [dict(instances[i]) for i in picked]
    if endpoint == V1 and rng.random() < 0.25:
        for row in rows:
            field = rng.choice(task.text_features)
            row[field] = {"b64": base64.b64encode(row[field].encode("utf-8")).decode("ascii")}
    return path_for(endpoint, name), json.dumps({"instances": rows}).encode(), picked


def _with_raw(instance: dict, field: str, raw_json_value: str) -> bytes:
    """The body ``{"instances": [instance]}`` with ``field``'s value written as the raw JSON ``raw_json_value``."""
    marker = "@@RAW@@"
    text = json.dumps({"instances": [{**instance, field: marker}]})
    return text.replace(json.dumps(marker), raw_json_value).encode("ascii")


def hostile_request(rng, kind: str, endpoint: str, name: str, pools):
    """``(path, body bytes, headers, picked)`` for one hostile kind; ``picked`` only for the valid kind."""
    task, instances, _ = pools[name]
    fields = task.text_features
    one = dict(rng.choice(instances))
    path = path_for(endpoint, name)
    headers = {"Content-Type": "application/json"}
    picked = None
    if kind == "invalid_json":
        body = rng.choice([b"{instances: [nope]}", b'{"instances": [{"sentence": "a",}]}', b"\xff\xfe{}", b"NaN{"])
    elif kind == "truncated_json":
        whole = json.dumps({"instances": [one, one]}).encode()
        body = whole[: rng.randint(1, len(whole) - 1)]
    elif kind == "lone_surrogate":
        body = _with_raw(one, fields[0], '"\\ud800"')  # the 6 ASCII characters \ud800: valid JSON
    elif kind == "surrogate_in_long_text":
        lone = rng.choice(["\\ud800", "\\udfff", "\\udbff", "\\udc00"])
        text = json.dumps(one[fields[-1]] + " and then ")[:-1] + lone + ' more words after it."'
        rows = [dict(rng.choice(instances)) for _ in range(rng.randint(0, 3))]
        before = json.dumps({"instances": rows + [{**one, fields[-1]: "@@RAW@@"}]})
        body = before.replace('"@@RAW@@"', text).encode("ascii")
    elif kind == "text_is_number":
        body = _with_raw(one, fields[0], rng.choice(["5", "-1.5e3", "true", "null", "[\"a\"]", "{}"]))
    elif kind == "instances_not_list":
        body = rng.choice([b'{"instances": "x"}', b'{"instances": 5}', b'{"instances": {}}', b'{"instances": null}'])
    elif kind == "body_is_list":
        body = rng.choice([b"[]", json.dumps([one]).encode()])
    elif kind == "body_is_null":
        body = rng.choice([b"null", b"5", b'"instances"', b"true"])
    elif kind == "missing_field":
        row = {k: v for k, v in one.items() if k != fields[-1]}
        if not row:
            row = {"text": one[fields[0]]}
        body = json.dumps({"instances": [row]}).encode()
    elif kind == "extra_field":
        body = rng.choice([json.dumps({"instances": [{**one, "label": 1}]}),
                           json.dumps({"instances": [one], "extra": True})]).encode()
    elif kind == "missing_instances":
        body = rng.choice([b"{}", json.dumps({"instance": [one]}).encode(), json.dumps({"Instances": [one]}).encode()])
    elif kind == "too_many_instances":
        body = json.dumps({"instances": [one] * (MAX_INSTANCES + 1)}).encode()
    elif kind == "text_too_long":
        body = json.dumps({"instances": [{**one, fields[0]: "word " * (MAX_TEXT_CHARS // 5 + 1)}]}).encode()
    elif kind == "body_too_large":
        # Many texts each under the text limit and few instances: only the body size is wrong.
        text = "x" * (MAX_TEXT_CHARS - 1)
        body = json.dumps({"instances": [{f: text for f in fields}] * 8}).encode()
        body += b" " * max(0, MAX_BODY_BYTES + 1024 - len(body))
    elif kind == "unknown_task":
        path = path_for(endpoint, rng.choice(["not_a_task", "CoLA", "glue", "cola2"]))
        body = json.dumps({"instances": [one]}).encode()
    elif kind == "empty_body":
        body = b""
    elif kind == "non_json_content_type":
        path, body, picked = valid_request(rng, endpoint, name, pools)
        content_type = rng.choice(NON_JSON_TYPES)
        headers = {"Content-Type": content_type} if content_type else {}
    elif kind == "b64_invalid_utf8":
        bad = rng.choice(["//79", "wyg=", "gA==", "7aCA"])  # ff fe fd; c3 28; 80; ed a0 80 (a surrogate in UTF-8)
        body = json.dumps({"instances": [{**one, fields[0]: {"b64": bad}}]}).encode()
    elif kind == "unknown_signature_name":
        signature_name = rng.choice(["nope", "predict", "Serving_Default"])  # "" would mean the default
        body = json.dumps({"signature_name": signature_name, "instances": [one]}).encode()
    else:
        raise ValueError(kind)
    return path, body, headers, picked


def run(args) -> dict:
    pools = expected_outputs(Path(args.model_dir), args.glue_dir, args.pool)
    state = Path(tempfile.mkdtemp(prefix="glue-tf-load-"))
    server = Server(args.model_dir, state / "state", workers=args.workers, GLUE_TF_THREADS=args.threads,
                    GLUE_TF_REQUEST_LOG="0", **LIMITS_ENV).wait_until_up()
    counts = {"ok": 0, "http_5xx": 0, "http_4xx": 0, "connection_errors": 0, "mismatches": 0,
              "valid_refused": 0, "hostile": 0, "hostile_refused": 0, "hostile_not_4xx": 0,
              "hostile_bad_error_body": 0, "connection_errors_after_a_refusal": 0}
    by_endpoint = {e: defaultdict(int) for e in (PREDICT, V1)}
    hostile = {}  # kind -> {"sent", "status": {code: n}, "bad_error_body"}
    examples = defaultdict(list)  # a few failing requests, to show in the summary
    failures_after_kill = []
    lock = threading.Lock()
    remaining = [args.requests]
    killed = {}
    started = time.monotonic()
    rss_start, rss_half = {}, {}

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def note(what, endpoint, path, body, status, payload):
        if len(examples[what]) < 3:
            examples[what].append({"endpoint": endpoint, "path": path, "body": body[:200].decode("ascii", "replace"),
                                   "status": status, "answer": payload[:300].decode("utf-8", "replace")})

    chosen = args.hostile_kinds or HOSTILE_KINDS + V1_ONLY_KINDS
    kinds = {PREDICT: [k for k in chosen if k not in V1_ONLY_KINDS], V1: list(chosen)}

    def client(seed):
        rng = random.Random(args.seed * 100_003 + seed)
        conn = None
        previous = None  # the last request answered on this connection, to explain a connection error
        while take():
            name = rng.choice(sorted(pools))
            task, _, answers = pools[name]
            endpoint = V1 if rng.random() < args.v1_fraction else PREDICT
            kind = None
            if rng.random() < args.hostile_fraction:
                if not kinds[PREDICT]:
                    endpoint = V1  # only /v1 kinds chosen
                kind = rng.choice(kinds[endpoint])
                path, body, headers, picked = hostile_request(rng, kind, endpoint, name, pools)
            else:
                path, body, picked = valid_request(rng, endpoint, name, pools)
                headers = {"Content-Type": "application/json"}
            valid = kind is None or kind in VALID_KINDS
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                payload = response.read()
                content_type = response.getheader("Content-Type", "")
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    counts["connection_errors"] += 1
                    by_endpoint[endpoint][f"{'hostile' if kind else 'valid'} connection error"] += 1
                    if kind is not None:
                        counts["hostile"] += 1
                        tally = hostile.setdefault(kind, {"sent": 0, "status": defaultdict(int), "bad_error_body": 0})
                        tally["sent"] += 1
                        tally["status"]["connection error"] += 1
                    if previous and previous[1] >= 400 and not previous[2]:
                        # The refusal said keep-alive, then the server dropped the connection.
                        counts["connection_errors_after_a_refusal"] += 1
                    if len(examples["connection error"]) < 5:
                        examples["connection error"].append({
                            "error": repr(error), "kind": kind or "valid", "path": path,
                            "previous on this connection":
                                f"{previous[0]} -> {previous[1]}{' (Connection: close)' if previous[2] else ''}"
                                if previous else "none (new connection)"})
                    if killed:
                        failures_after_kill.append(time.monotonic() - killed["at"])
                if conn is not None:
                    conn.close()
                conn, previous = None, None  # reconnect; the kill (or the server) closed this one
                continue
            previous = (kind or "valid", response.status, response.will_close)
            status = response.status
            with lock:
                by_endpoint[endpoint][f"{'hostile' if kind else 'valid'} {status}"] += 1
                if status >= 500:
                    counts["http_5xx"] += 1
                    note("5xx", endpoint, path, body, status, payload)
                elif status >= 400:
                    counts["http_4xx"] += 1
                if kind is not None:
                    counts["hostile"] += 1
                    tally = hostile.setdefault(kind, {"sent": 0, "status": defaultdict(int), "bad_error_body": 0})
                    tally["sent"] += 1
                    tally["status"][str(status)] += 1
                if not valid:
                    if 400 <= status < 500:
                        counts["hostile_refused"] += 1
                        if not good_error_body(endpoint, content_type, payload):
                            counts["hostile_bad_error_body"] += 1
                            tally["bad_error_body"] += 1
                            note(f"bad error body: {kind}", endpoint, path, body, status, payload)
                    else:
                        counts["hostile_not_4xx"] += 1
                        note(f"hostile not refused: {kind}", endpoint, path, body, status, payload)
                    continue
                if status >= 400:
                    counts["valid_refused"] += 1
                    note(f"valid refused: {kind or 'valid'}", endpoint, path, body, status, payload)
                    continue
                try:
                    predictions = json.loads(payload)["predictions"]
                except (ValueError, KeyError, TypeError):
                    predictions = []
                bad = sum(not matches(task, got, answers[i]) for got, i in zip(predictions, picked))
                bad += abs(len(predictions) - len(picked))
                if bad:
                    note("mismatch", endpoint, path, body, status, payload)
                counts["mismatches"] += bad
                counts["ok"] += 1

    def warm_up_then_watch():
        time.sleep(args.warm_up)
        rss_start.update({pid: rss_mib(pid) for pid in server.worker_pids()})
        if args.kill_worker_after:
            time.sleep(max(0.0, args.kill_worker_after - args.warm_up))
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            killed.update(pid=victim, at=time.monotonic(), requests_done=args.requests - remaining[0])
        while remaining[0] > args.requests // 2:
            time.sleep(0.2)
        rss_half.update({pid: rss_mib(pid) for pid in server.worker_pids()})

    try:
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
        server_log = server.log()
    finally:
        server.stop()  # also when a client thread's bug ends the run: no gunicorn left behind

    survivors = [pid for pid in rss_start if pid in rss_end and pid != killed.get("pid")]
    growth = {pid: rss_end[pid] - rss_start[pid] for pid in survivors if rss_start[pid] and rss_end[pid]}
    late_growth = {pid: rss_end[pid] - rss_half[pid] for pid in survivors if rss_half.get(pid) and rss_end[pid]}
    summary = {
        "requests": args.requests, "clients": args.clients, "workers": args.workers, "tasks": sorted(pools),
        "texts": "glue dev" if args.glue_dir else "built-in", "hostile_fraction": args.hostile_fraction,
        "v1_fraction": args.v1_fraction, "limits": LIMITS_ENV,
        "seconds": round(elapsed, 1), "requests_per_second": round(args.requests / elapsed, 1), **counts,
        "by_endpoint": {e: dict(sorted(c.items())) for e, c in by_endpoint.items()},
        "hostile_kinds": {k: {**v, "status": dict(sorted(v["status"].items()))} for k, v in sorted(hostile.items())},
        "rss_mib_after_warm_up": {str(k): round(v, 1) for k, v in rss_start.items() if v},
        "rss_mib_at_half": {str(k): round(v, 1) for k, v in rss_half.items() if v},
        "rss_mib_at_end": {str(k): round(v, 1) for k, v in rss_end.items() if v},
        "max_rss_growth_mib": round(max(growth.values(), default=0.0), 1),
        "max_rss_growth_second_half_mib": round(max(late_growth.values(), default=0.0), 1),
        "server_tracebacks": server_log.count("Traceback"),
    }
    if examples:
        summary["failing_examples"] = dict(examples)
    if killed:
        summary["killed_worker"] = {
            "pid": killed["pid"], "after_requests": killed["requests_done"],
            "replaced": killed["pid"] not in workers_end and len(workers_end) == args.workers,
            "failed_requests": len(failures_after_kill),
        }
    checks = {
        "no 5xx": counts["http_5xx"] == 0,
        "no valid request refused": counts["valid_refused"] == 0,
        "every answer matches in-process": counts["mismatches"] == 0,
        "all requests answered or failed by the kill":
            counts["ok"] + counts["hostile_refused"] + counts["connection_errors"] == args.requests,
        # A leak grows with requests; oneDNN's per-shape primitive caches (on for serving) fill as new
        # batch shapes arrive and then level off, so the check is on the second half of the run.
        f"RSS growth over the second half under {args.max_rss_growth} MiB":
            summary["max_rss_growth_second_half_mib"] <= args.max_rss_growth,
    }
    if args.hostile_fraction == 0:
        checks["no 4xx"] = counts["http_4xx"] == 0
    else:
        checks["every hostile request refused with a 4xx"] = counts["hostile_not_4xx"] == 0
        checks["every refusal has its endpoint's JSON error body"] = counts["hostile_bad_error_body"] == 0
        checks["no keep-alive connection dropped after a refusal"] = counts["connection_errors_after_a_refusal"] == 0
    if killed:
        checks["killed worker replaced"] = summary["killed_worker"]["replaced"]
        # Each client has one request in flight on one connection: only those on the killed worker fail.
        checks["failures bounded by the requests in flight"] = len(failures_after_kill) <= args.clients
    else:
        checks["no connection errors"] = counts["connection_errors"] == 0
    summary["checks"] = checks
    return summary


def fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value}: expected a fraction between 0 and 1")
    return number


def kind_list(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(HOSTILE_KINDS + V1_ONLY_KINDS))
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kinds {unknown}; known: {', '.join(HOSTILE_KINDS + V1_ONLY_KINDS)}")
    return kinds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="a training run's --out folder")
    parser.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR") or None,
                        help="GLUE TSV data whose dev examples to send (default $GLUE_DIR; without it, built-in "
                             "sentences)")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--pool", type=int, default=200, help="instances per task to draw requests from")
    parser.add_argument("--hostile-fraction", type=fraction, default=0.0,
                        help="fraction of requests drawn from the hostile kinds (default 0)")
    parser.add_argument("--v1-fraction", type=fraction, default=None,
                        help="fraction of requests sent to /v1/models/<task>:predict "
                             "(default 0.5 with --hostile-fraction, else 0)")
    parser.add_argument("--hostile-kinds", type=kind_list, default=None,
                        help="comma-separated kinds to draw hostile requests from (default all: "
                             f"{', '.join(HOSTILE_KINDS + V1_ONLY_KINDS)})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clients' random choices")
    parser.add_argument("--warm-up", type=float, default=5.0, help="seconds before the first RSS reading")
    parser.add_argument("--kill-worker-after", type=float, default=0.0, help="SIGKILL one worker after S seconds")
    parser.add_argument("--max-rss-growth", type=float, default=32.0,
                        help="MiB a surviving worker may grow over the second half of the requests")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    if args.v1_fraction is None:
        args.v1_fraction = 0.5 if args.hostile_fraction else 0.0
    summary = run(args)
    print(json.dumps(summary, indent=2))
    if args.json_out:
        with open(args.json_out, "a", encoding="utf-8") as sink:
            sink.write(json.dumps({"kind": "load_test", "date": time.strftime("%Y-%m-%d"), **summary}) + "\n")
    return 0 if all(summary["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
