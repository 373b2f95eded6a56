"""A bounded load test of the service: correctness, errors, hostile input, memory, and a worker killed mid-load.

    python -m bench.load_test --model-dir RUN --glue-dir ../shared/glue_data --requests 20000 --clients 32
    python -m bench.load_test --model-dir RUN --requests 3000 --clients 32 --hostile-fraction 0.33

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
bodies, invalid UTF-8 or loose padding in ``{"b64": ...}``, an unknown ``signature_name``,
JSON nested past ``GLUE_TF_MAX_JSON_DEPTH``, a loose ``/jobs?limit=`` number, and
chunked bodies (sent on a connection of their own) with a malformed or huge chunk
size or over the body limit in all.
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
import dataclasses
import http.client
import json
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from glue_tf.exports import saved_model, store
from glue_tf.tasks import TASKS
from tests.support.server import Server
from tests.support.tiny import SENTENCES

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
    "non_json_content_type", "deep_json", "bad_query_number", "bad_chunk_size", "huge_chunk_size",
    "chunked_over_limit",
]
V1_ONLY_KINDS = ["b64_invalid_utf8", "b64_loose_padding", "unknown_signature_name"]
FRAMED_KINDS = {"bad_chunk_size", "huge_chunk_size", "chunked_over_limit"}
MALFORMED_KINDS = {"invalid_json", "truncated_json", "lone_surrogate", "surrogate_in_long_text", "text_is_number",
                   "instances_not_list", "body_is_list", "body_is_null"}
VALID_KINDS = {"non_json_content_type"}
NON_JSON_TYPES = ["text/plain", "application/x-www-form-urlencoded", None]  # None: no Content-Type at all


def rss_mib(pid: int) -> float | None:
    """A worker's anonymous resident memory (RssAnon): what it allocated itself. VmRSS adds the pages of the
    shared libraries it has touched, shared between workers and growing as new kernels first run."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
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
        path = store.latest(model_dir, name)
        if path is None or task.model_task:
            continue
        signature, _ = saved_model.load(path)
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


def chunked(body: bytes, pieces: int, size_line: bytes | None = None) -> bytes:
    """``body`` framed in ``pieces`` chunks; ``size_line`` replaces the first chunk's size (a lie)."""
    step = max(1, -(-len(body) // pieces))
    parts = [body[i : i + step] for i in range(0, len(body), step)]
    lines = [b"%x" % len(part) for part in parts]
    if size_line is not None:
        lines[0] = size_line
    return b"".join(line + b"\r\n" + part + b"\r\n" for line, part in zip(lines, parts)) + b"0\r\n\r\n"


def framed_request(rng, kind: str, path: str, one: dict) -> Request:
    """A chunked body whose framing is wrong: a malformed or huge chunk size, or too many bytes in all."""
    body = json.dumps({"instances": [one]}).encode()
    if kind == "bad_chunk_size":
        framed = chunked(body, 2, rng.choice([b"zz", b"-5", b"0x10", b"1;\x01"]))
    elif kind == "huge_chunk_size":
        framed = chunked(body, 1, rng.choice([b"ffffffffffffffffffff", b"%x" % (MAX_BODY_BYTES + 1)]))
    else:
        framed = chunked(body[:-1] + b" " * (MAX_BODY_BYTES + 1) + b"}", 8)
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    return Request("POST", path, framed, headers, framed=True)


def hostile_request(rng, kind: str, endpoint: str, name: str, pools) -> Request:
    """One hostile request of ``kind``; ``picked`` only for the valid kind."""
    task, instances, _ = pools[name]
    one = dict(rng.choice(instances))
    path = path_for(endpoint, name)
    if kind in FRAMED_KINDS:
        return framed_request(rng, kind, path, one)
    if kind == "bad_query_number":
        limit = rng.choice(["%C2%B2", "%D9%A3", "1e3", "-1", "0", "1001", "9" * 30, "0x10", ""])
        return Request("GET", f"/jobs?limit={limit}", b"", {})
    if kind == "non_json_content_type":
        path, body, picked = valid_request(rng, endpoint, name, pools)
        content_type = rng.choice(NON_JSON_TYPES)
        return Request("POST", path, body, {"Content-Type": content_type} if content_type else {}, picked)
    if kind == "unknown_task":
        path = path_for(endpoint, rng.choice(["not_a_task", "CoLA", "glue", "cola2"]))
    maker = malformed_body if kind in MALFORMED_KINDS else wrong_body
    return Request("POST", path, maker(rng, kind, task, instances, one), {"Content-Type": "application/json"})


def malformed_body(rng, kind: str, task, instances: list, one: dict) -> bytes:
    """Bodies that are not the JSON a route takes: broken, truncated, mistyped, surrogates."""
    fields = task.text_features
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
    else:
        raise ValueError(kind)
    return body


def wrong_body(rng, kind: str, task, instances: list, one: dict) -> bytes:
    """Well-formed JSON that is wrong for the route: fields, limits, depth, encodings, names."""
    fields = task.text_features
    if kind == "missing_field":
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
        body = json.dumps({"instances": [one]}).encode()
    elif kind == "deep_json":
        depth = rng.choice([40, 257, 300, 990, 5000])
        body = b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "b64_loose_padding":
        text = base64.b64encode(one[fields[0]].encode("utf-8")).decode("ascii")  # canonical, then loosened
        loose = text + rng.choice(["=", "==", "\n", " "])
        body = json.dumps({"instances": [{**one, fields[0]: {"b64": loose}}]}).encode()
    elif kind == "empty_body":
        body = b""
    elif kind == "b64_invalid_utf8":
        bad = rng.choice(["//79", "wyg=", "gA==", "7aCA"])  # ff fe fd; c3 28; 80; ed a0 80 (a surrogate in UTF-8)
        body = json.dumps({"instances": [{**one, fields[0]: {"b64": bad}}]}).encode()
    elif kind == "unknown_signature_name":
        signature_name = rng.choice(["nope", "predict", "Serving_Default"])  # "" would mean the default
        body = json.dumps({"signature_name": signature_name, "instances": [one]}).encode()
    else:
        raise ValueError(kind)
    return body


class LoadRun:
    """One run's shared state: the requests left to send, and what the clients saw, under one lock."""

    def __init__(self, args, pools: dict, server):
        self.args, self.pools, self.server = args, pools, server
        self.counts = {"ok": 0, "http_5xx": 0, "http_4xx": 0, "connection_errors": 0, "mismatches": 0,
                       "valid_refused": 0, "hostile": 0, "hostile_refused": 0, "hostile_not_4xx": 0,
                       "hostile_bad_error_body": 0, "connection_errors_after_a_refusal": 0}
        self.by_endpoint = {e: defaultdict(int) for e in (PREDICT, V1)}
        self.hostile = {}  # kind -> {"sent", "status": {code: n}, "bad_error_body"}
        self.examples = defaultdict(list)  # a few failing requests, to show in the summary
        self.failures_after_kill = []
        self.lock = threading.Lock()
        self.remaining = args.requests
        self.killed = {}
        self.rss_start, self.rss_half = {}, {}
        chosen = args.hostile_kinds or HOSTILE_KINDS + V1_ONLY_KINDS
        self.kinds = {PREDICT: [k for k in chosen if k not in V1_ONLY_KINDS], V1: list(chosen)}

    def take(self) -> bool:
        with self.lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True

    def note(self, what, endpoint, path, body, status, payload):
        if len(self.examples[what]) < 3:
            self.examples[what].append({"endpoint": endpoint, "path": path, "status": status,
                                        "body": body[:200].decode("ascii", "replace"),
                                        "answer": payload[:300].decode("utf-8", "replace")})

    def draw(self, rng):
        """``(endpoint, kind, task name, request)``; kind None for a valid request."""
        name = rng.choice(sorted(self.pools))
        endpoint = V1 if rng.random() < self.args.v1_fraction else PREDICT
        if rng.random() < self.args.hostile_fraction:
            if not self.kinds[PREDICT]:
                endpoint = V1  # only /v1 kinds chosen
            kind = rng.choice(self.kinds[endpoint])
            return endpoint, kind, name, hostile_request(rng, kind, endpoint, name, self.pools)
        path, body, picked = valid_request(rng, endpoint, name, self.pools)
        return endpoint, None, name, Request("POST", path, body, {"Content-Type": "application/json"}, picked)

    def client(self, seed):
        rng = random.Random(self.args.seed * 100_003 + seed)
        conn = None
        previous = None  # the last request answered on this connection, to explain a connection error
        while self.take():
            endpoint, kind, name, sent = self.draw(rng)
            try:
                if sent.framed:  # its own connection: the body's framing is the hostile part
                    answer = send_framed(self.server.port, sent)
                else:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
                    answer = send(conn, sent)
            except (OSError, http.client.HTTPException) as error:
                self.connection_error(endpoint, kind, sent.path, previous, error)
                if conn is not None:
                    conn.close()
                conn, previous = None, None  # reconnect; the kill (or the server) closed this one
                continue
            if not sent.framed:
                previous = (kind or "valid", answer.status, answer.will_close)
            self.answered(endpoint, kind, name, sent, answer)

    def connection_error(self, endpoint, kind, path, previous, error) -> None:
        with self.lock:
            self.counts["connection_errors"] += 1
            self.by_endpoint[endpoint][f"{'hostile' if kind else 'valid'} connection error"] += 1
            if kind is not None:
                self.counts["hostile"] += 1
                self._tally(kind)["status"]["connection error"] += 1
            if previous and previous[1] >= 400 and not previous[2]:
                # The refusal said keep-alive, then the server dropped the connection.
                self.counts["connection_errors_after_a_refusal"] += 1
            if len(self.examples["connection error"]) < 5:
                self.examples["connection error"].append({
                    "error": repr(error), "kind": kind or "valid", "path": path,
                    "previous on this connection":
                        f"{previous[0]} -> {previous[1]}{' (Connection: close)' if previous[2] else ''}"
                        if previous else "none (new connection)"})
            if self.killed:
                self.failures_after_kill.append(time.monotonic() - self.killed["at"])

    def _tally(self, kind: str) -> dict:
        tally = self.hostile.setdefault(kind, {"sent": 0, "status": defaultdict(int), "bad_error_body": 0})
        tally["sent"] += 1
        return tally

    def answered(self, endpoint, kind, name, sent, answer) -> None:
        status = answer.status
        with self.lock:
            self.by_endpoint[endpoint][f"{'hostile' if kind else 'valid'} {status}"] += 1
            if status >= 500:
                self.counts["http_5xx"] += 1
                self.note("5xx", endpoint, sent.path, sent.body, status, answer.payload)
            elif status >= 400:
                self.counts["http_4xx"] += 1
            if kind is not None:
                self.counts["hostile"] += 1
                self._tally(kind)["status"][str(status)] += 1
            if kind is not None and kind not in VALID_KINDS:
                self._refusal(endpoint, kind, sent, answer)
            elif status >= 400:
                self.counts["valid_refused"] += 1
                self.note(f"valid refused: {kind or 'valid'}", endpoint, sent.path, sent.body, status, answer.payload)
            else:
                self._prediction(endpoint, name, sent, answer)

    def _refusal(self, endpoint, kind, sent, answer) -> None:
        if not 400 <= answer.status < 500:
            self.counts["hostile_not_4xx"] += 1
            self.note(f"hostile not refused: {kind}", endpoint, sent.path, sent.body, answer.status, answer.payload)
            return
        self.counts["hostile_refused"] += 1
        shape = V1 if sent.path.startswith(V1) else PREDICT
        if not good_error_body(shape, answer.content_type, answer.payload):
            self.counts["hostile_bad_error_body"] += 1
            self.hostile[kind]["bad_error_body"] += 1
            self.note(f"bad error body: {kind}", endpoint, sent.path, sent.body, answer.status, answer.payload)

    def _prediction(self, endpoint, name, sent, answer) -> None:
        task, _, answers = self.pools[name]
        try:
            predictions = json.loads(answer.payload)["predictions"]
        except (ValueError, KeyError, TypeError):
            predictions = []
        bad = sum(not matches(task, got, answers[i]) for got, i in zip(predictions, sent.picked))
        bad += abs(len(predictions) - len(sent.picked))
        if bad:
            self.note("mismatch", endpoint, sent.path, sent.body, answer.status, answer.payload)
        self.counts["mismatches"] += bad
        self.counts["ok"] += 1

    def watch(self):
        """RSS after the warm-up, the kill (``--kill-worker-after``), and RSS at half the requests."""
        args, server = self.args, self.server
        time.sleep(args.warm_up)
        self.rss_start.update({pid: rss_mib(pid) for pid in server.worker_pids()})
        if args.kill_worker_after:
            time.sleep(max(0.0, args.kill_worker_after - args.warm_up))
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            self.killed.update(pid=victim, at=time.monotonic(), requests_done=args.requests - self.remaining)
        while self.remaining > args.requests // 2:
            time.sleep(0.2)
        self.rss_half.update({pid: rss_mib(pid) for pid in server.worker_pids()})


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes
    headers: dict
    picked: list | None = None  # the pool indices of a valid request's instances
    framed: bool = False  # the body is already framed (chunked) and goes as is on a connection of its own


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    payload: bytes
    will_close: bool


def send(conn: http.client.HTTPConnection, sent: Request) -> Answer:
    conn.request(sent.method, sent.path, sent.body if sent.method == "POST" else None, sent.headers)
    response = conn.getresponse()
    payload = response.read()
    return Answer(response.status, response.getheader("Content-Type", ""), payload, response.will_close)


def send_framed(port: int, sent: Request) -> Answer:
    """A request whose body is sent exactly as given (a chunked body with lying chunk sizes)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "127.0.0.1", **sent.headers}.items())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"{sent.method} {sent.path} HTTP/1.1\r\n{head}\r\n".encode() + sent.body)
        response = http.client.HTTPResponse(sock, method=sent.method)
        response.begin()
        payload = response.read()
        return Answer(response.status, response.getheader("Content-Type", ""), payload, response.will_close)


def start_server(args) -> Server:
    state = Path(tempfile.mkdtemp(prefix="glue-tf-load-"))
    return Server(args.model_dir, state / "state", workers=args.workers, GLUE_TF_THREADS=args.threads,
                  GLUE_TF_REQUEST_LOG="0", **LIMITS_ENV).wait_until_up()


def drive(load: LoadRun) -> dict:
    """Runs the clients and the watcher to the end; what the workers looked like then."""
    started = time.monotonic()
    threading.Thread(target=load.watch, daemon=True).start()
    threads = [threading.Thread(target=load.client, args=(i,)) for i in range(load.args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    workers_end = load.server.worker_pids()
    return {"elapsed": time.monotonic() - started, "workers_end": workers_end,
            "rss_end": {pid: rss_mib(pid) for pid in workers_end}, "log": load.server.log()}


def summarize(load: LoadRun, end: dict) -> dict:
    args, rss_start, rss_half, rss_end = load.args, load.rss_start, load.rss_half, end["rss_end"]
    survivors = [pid for pid in rss_start if pid in rss_end and pid != load.killed.get("pid")]
    growth = {pid: rss_end[pid] - rss_start[pid] for pid in survivors if rss_start[pid] and rss_end[pid]}
    late_growth = {pid: rss_end[pid] - rss_half[pid] for pid in survivors if rss_half.get(pid) and rss_end[pid]}
    summary = {
        "requests": args.requests, "clients": args.clients, "workers": args.workers, "tasks": sorted(load.pools),
        "texts": "glue dev" if args.glue_dir else "built-in", "hostile_fraction": args.hostile_fraction,
        "v1_fraction": args.v1_fraction, "limits": LIMITS_ENV, "seconds": round(end["elapsed"], 1),
        "requests_per_second": round(args.requests / end["elapsed"], 1), **load.counts,
        "by_endpoint": {e: dict(sorted(c.items())) for e, c in load.by_endpoint.items()},
        "hostile_kinds": {k: {**v, "status": dict(sorted(v["status"].items()))}
                          for k, v in sorted(load.hostile.items())},
        "rss_mib_after_warm_up": {str(k): round(v, 1) for k, v in rss_start.items() if v},
        "rss_mib_at_half": {str(k): round(v, 1) for k, v in rss_half.items() if v},
        "rss_mib_at_end": {str(k): round(v, 1) for k, v in rss_end.items() if v},
        "max_rss_growth_mib": round(max(growth.values(), default=0.0), 1),
        "max_rss_growth_second_half_mib": round(max(late_growth.values(), default=0.0), 1),
        "server_tracebacks": end["log"].count("Traceback"),
    }
    if load.examples:
        summary["failing_examples"] = dict(load.examples)
    if load.killed:
        summary["killed_worker"] = {
            "pid": load.killed["pid"], "after_requests": load.killed["requests_done"],
            "replaced": load.killed["pid"] not in end["workers_end"] and len(end["workers_end"]) == args.workers,
            "failed_requests": len(load.failures_after_kill),
        }
    return summary


def checks(load: LoadRun, summary: dict) -> dict:
    args, counts = load.args, load.counts
    found = {
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
        found["no 4xx"] = counts["http_4xx"] == 0
    else:
        found["every hostile request refused with a 4xx"] = counts["hostile_not_4xx"] == 0
        found["every refusal has its endpoint's JSON error body"] = counts["hostile_bad_error_body"] == 0
        found["no keep-alive connection dropped after a refusal"] = counts["connection_errors_after_a_refusal"] == 0
    if load.killed:
        found["killed worker replaced"] = summary["killed_worker"]["replaced"]
        # Each client has one request in flight on one connection: only those on the killed worker fail.
        found["failures bounded by the requests in flight"] = len(load.failures_after_kill) <= args.clients
    else:
        found["no connection errors"] = counts["connection_errors"] == 0
    return found


def run(args) -> dict:
    pools = expected_outputs(Path(args.model_dir), args.glue_dir, args.pool)
    server = start_server(args)
    load = LoadRun(args, pools, server)
    try:
        end = drive(load)
    finally:
        server.stop()  # also when a client thread's bug ends the run: no gunicorn left behind
    summary = summarize(load, end)
    summary["checks"] = checks(load, summary)
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
