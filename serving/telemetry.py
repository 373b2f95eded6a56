"""Prometheus metrics that add up across gunicorn workers without a client library.

Each worker counts in memory and writes a snapshot to ``<state>/metrics/<pid>.json``
at most once a second (and before answering ``/metrics``); ``/metrics`` sums
the snapshots of every worker of this server, the dead ones included, so
counters never go backwards when a worker is replaced.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Telemetry:
    def __init__(self, state_dir):
        self.folder = Path(state_dir) / "metrics"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{os.getpid()}.json"
        self._lock = threading.Lock()
        self._requests = defaultdict(int)  # "endpoint|method|status" -> count
        self._latency = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1) + [0.0])  # buckets, +Inf, sum
        self._batches = [0] * (len(BATCH_BUCKETS) + 1) + [0]  # buckets, +Inf, sum of sizes
        self._last_flush = 0.0

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[f"{endpoint}|{method}|{status}"] += 1
            hist = self._latency[endpoint]
            hist[_bucket(LATENCY_BUCKETS, seconds)] += 1
            hist[-1] += seconds
        self.flush()

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self._batches[_bucket(BATCH_BUCKETS, size)] += 1
            self._batches[-1] += size

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < 1.0:
            return
        self._last_flush = now
        with self._lock:
            snapshot = {"requests": dict(self._requests), "latency": dict(self._latency), "batches": list(self._batches)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        os.replace(tmp, self.path)

    def render(self) -> str:
        self.flush(force=True)
        requests = defaultdict(int)
        latency = {}
        batches = [0] * (len(BATCH_BUCKETS) + 2)
        for path in self.folder.glob("*.json"):
            try:
                snap = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for key, count in snap["requests"].items():
                requests[key] += count
            for endpoint, hist in snap["latency"].items():
                total = latency.setdefault(endpoint, [0] * len(hist))
                latency[endpoint] = [a + b for a, b in zip(total, hist)]
            batches = [a + b for a, b in zip(batches, snap["batches"])]
        lines = ["# HELP glue_tf_requests_total HTTP requests by endpoint, method and status.",
                 "# TYPE glue_tf_requests_total counter"]
        for key in sorted(requests):
            endpoint, method, status = key.split("|")
            lines.append(f'glue_tf_requests_total{{endpoint="{endpoint}",method="{method}",status="{status}"}} {requests[key]}')
        lines += ["# HELP glue_tf_request_seconds Request latency.", "# TYPE glue_tf_request_seconds histogram"]
        for endpoint in sorted(latency):
            lines += _histogram("glue_tf_request_seconds", f'endpoint="{endpoint}",', LATENCY_BUCKETS, latency[endpoint])
        lines += ["# HELP glue_tf_batch_size Instances per model call after request batching.",
                  "# TYPE glue_tf_batch_size histogram"]
        lines += _histogram("glue_tf_batch_size", "", BATCH_BUCKETS, batches)
        return "\n".join(lines) + "\n"


def _bucket(bounds, value) -> int:
    for index, bound in enumerate(bounds):
        if value <= bound:
            return index
    return len(bounds)


def _histogram(name: str, labels: str, bounds, counts) -> list[str]:
    lines, cumulative = [], 0
    for bound, count in zip(bounds, counts):
        cumulative += count
        lines.append(f'{name}_bucket{{{labels}le="{bound}"}} {cumulative}')
    cumulative += counts[len(bounds)]
    lines.append(f'{name}_bucket{{{labels}le="+Inf"}} {cumulative}')
    lines.append(f"{name}_sum{{{labels.rstrip(',')}}} {counts[-1]}" if labels else f"{name}_sum {counts[-1]}")
    lines.append(f"{name}_count{{{labels.rstrip(',')}}} {cumulative}" if labels else f"{name}_count {cumulative}")
    return lines
