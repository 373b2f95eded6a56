"""Prometheus metrics through ``prometheus_client``, summed across gunicorn workers.

Under gunicorn, ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers import ``prometheus_client``: every worker then writes its values to mmap
files there, and ``/metrics`` in any worker merges the files of all workers, the
dead ones included, so counters never go backwards when a worker is replaced.
Without the variable (Flask's test client) each ``Telemetry`` keeps its own
registry, so several apps in one process never clash. The metric objects are
built the same way in both modes; only ``render`` differs.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from importlib import metadata

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.http import HTTP_STATUS_CODES

from glue_tf.tasks import TASKS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
STATUSES = frozenset(str(code) for code in HTTP_STATUS_CODES)
# label -> distribution whose version it carries (python: the interpreter's)
BUILD_LABELS = {"glue_tf": "glue-tf", "tensorflow": "tensorflow", "tensorflow_text": "tensorflow-text",
                "keras": "keras", "python": ""}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PROCESS_REFRESH_SECONDS = 1.0
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def multiprocess_enabled() -> bool:
    """True when prometheus_client writes to shared files (decided when it was imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Telemetry:
    def __init__(self, refresh_every: float | None = None):
        """``refresh_every``: also refresh this process's memory and CPU gauges on a timer, so a worker
        that answers no request (the load balancer sent it none) does not report its boot-time figures."""
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if self.multiprocess != multiprocess_enabled():
            # prometheus_client picks its value store when first imported; a variable set
            # (or removed) later would make /metrics read files nobody writes, or the reverse.
            raise RuntimeError(
                f"{MULTIPROC_ENV} must be set before prometheus_client is first imported "
                f"(set now: {self.multiprocess}, at import: {multiprocess_enabled()})"
            )
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "glue_tf_requests_total", "HTTP requests by endpoint, method, status, task and model version.",
            ("endpoint", "method", "status", "task", "model_version"), registry=reg)
        self.request_seconds = Histogram(
            "glue_tf_request_seconds", "Request latency in seconds.",
            ("endpoint", "task"), buckets=LATENCY_BUCKETS, registry=reg)
        self.batch_size = Histogram(
            "glue_tf_batch_size", "Instances per model call after request batching.",
            ("task", "model_version"), buckets=BATCH_BUCKETS, registry=reg)
        self.queue_instances = Gauge(
            "glue_tf_queue_instances", "Instances waiting in the batching queue.",
            ("task", "model_version"), multiprocess_mode="livesum", registry=reg)
        # Job counts come from the shared database: the latest value any worker set is right.
        self.jobs = Gauge(
            "glue_tf_jobs", "Jobs by state.", ("state",), multiprocess_mode="mostrecent", registry=reg)
        # Set by hand: custom collectors and set_function do not work in multiprocess mode.
        self.process_rss = Gauge(
            "glue_tf_process_resident_memory_bytes", "Resident memory of this worker in bytes.",
            multiprocess_mode="liveall", registry=reg)
        # A counter: every worker adds its own CPU time as it goes, and a dead worker's seconds still count.
        self.process_cpu = Counter(
            "glue_tf_process_cpu_seconds", "User and system CPU time of the workers in seconds.", registry=reg)
        self._cpu_counted = 0.0
        self.build_info = Gauge(
            "glue_tf_build_info", "Always 1; the labels say which versions this service runs.",
            tuple(BUILD_LABELS), multiprocess_mode="max", registry=reg)
        self.build_info.labels(**build_versions()).set(1)
        self._lock = threading.Lock()
        self._job_states: set[str] = set()
        self._last_process_refresh = float("-inf")
        self._refresh_process(force=True)
        if refresh_every:
            threading.Thread(target=self._refresh_loop, args=(refresh_every,), name="process-metrics",
                             daemon=True).start()

    def _refresh_loop(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            self._refresh_process(force=True)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float,
                        task: str | None = None, model_version: int | None = None) -> None:
        """Label values come from known sets (the caller's route names, ``METHODS``, the task registry,
        HTTP's status codes); anything else is ``other``, so a client cannot add series."""
        task_label = "" if task is None else _known(task, TASKS)
        status_label = _known(str(int(status)), STATUSES)
        self.requests.labels(endpoint, _known(method, METHODS), status_label, task_label,
                             _version(model_version)).inc()
        self.request_seconds.labels(endpoint, task_label).observe(max(0.0, float(seconds)))
        self._refresh_process()

    def observe_batch(self, task: str, model_version: int, size: int) -> None:
        self.batch_size.labels(task, _version(model_version)).observe(size)

    def queue_changed(self, task: str, model_version: int, delta: int) -> None:
        self.queue_instances.labels(task, _version(model_version)).inc(delta)

    def set_job_counts(self, counts: dict[str, int]) -> None:
        """Set every state's count; states seen before but missing now drop to 0."""
        with self._lock:
            missing = self._job_states - set(counts)
            self._job_states |= set(counts)
        for state in missing:
            self.jobs.labels(state).set(0)
        for state, count in counts.items():
            self.jobs.labels(state).set(count)

    def render(self) -> tuple[bytes, str]:
        """The exposition for ``GET /metrics``: (body, content type)."""
        self._refresh_process(force=True)
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def _refresh_process(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_process_refresh < PROCESS_REFRESH_SECONDS:
                return
            self._last_process_refresh = now
        rss = _resident_bytes()
        if rss is not None:
            self.process_rss.set(rss)
        with self._lock:
            spent = time.process_time()
            added, self._cpu_counted = spent - self._cpu_counted, max(spent, self._cpu_counted)
        if added > 0:
            self.process_cpu.inc(added)


def _known(value: str, known) -> str:
    return value if value in known else "other"


def build_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported for it); keras only where this
    process has imported it (the service may run without it)."""
    found = {}
    for label, distribution in BUILD_LABELS.items():
        if not distribution:
            continue
        if distribution == "keras" and "keras" not in sys.modules:
            found[label] = ""
            continue
        try:
            found[label] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[label] = ""
    found["python"] = platform.python_version()
    return found


def _version(model_version: int | None) -> str:
    return "" if model_version is None else str(model_version)


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    try:  # not Linux: peak rather than current RSS, better than nothing
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return None
