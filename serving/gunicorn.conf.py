"""gunicorn settings, each from an environment variable (see docs/SERVING.md, "Settings").

Models are loaded in every worker after the fork (``preload_app`` stays off:
TensorFlow's thread pools do not survive a fork). ``gthread`` workers let
concurrent requests of one worker meet in the batching queue.

A worker loads and warms up its models in a background thread; it starts
accepting connections only once they are ready (``post_worker_init``), telling
the master it is alive meanwhile, so warm-up compiles may outlast ``timeout``
and a worker never answers a request with a model still warming up. The
master and the workers already serving go on answering.
"""

import os
import shutil
import sys
import time

from glue_tf import tf_startup
from serving import allocator
from serving.chunked import bound_chunk_size
from serving.settings import ServerSettings, Settings, SettingsError, check_exposure

# Every variable is checked here, in the master, before any worker starts: a bad one
# stops the server at once with one line (SystemExit passes gunicorn's config loader).
try:
    _settings = Settings.from_env()
    _server = ServerSettings.from_env()
    check_exposure(_settings, _server)
except SettingsError as error:
    sys.exit(f"glue-tf: {error}")

# The workers inherit it: a chunk larger than a whole body may be is refused as it is parsed.
bound_chunk_size(_settings.max_body_bytes)

# prometheus_client chooses multiprocess mode when first imported, so its folder is set
# here in the master, before the fork: workers (the app is not preloaded) import it later
# and inherit the variable.
_metrics_dir = os.path.abspath(os.path.join(_settings.state_dir, "metrics"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
os.makedirs(_metrics_dir, exist_ok=True)

# TensorFlow reads TF_ENABLE_ONEDNN_OPTS and TF_XLA_FLAGS once, when a worker imports it: chosen here, in
# the master. The XLA cache lets a restarted worker load its compiled grid instead of compiling it again.
_tf_startup = tf_startup.prepare()
# Large tensors from malloc, so a worker's resident set falls back after a big batch (serving/allocator.py).
_allocator = allocator.prepare()

bind = _server.bind
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
keepalive = _server.keepalive
preload_app = False
# The service writes one JSON line per request itself (GLUE_TF_REQUEST_LOG); gunicorn's
# plain-text access log is off unless asked for.
accesslog = _server.access_log
errorlog = "-"
loglevel = _server.log_level
limit_request_line = 8190
wsgi_app = "serving.wsgi:app"


def on_starting(server):
    """A new server starts its metrics from zero: drop the old workers' metric files."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def when_ready(server):
    for line in (*_tf_startup, _allocator):
        server.log.info(line)


def child_exit(server, worker):
    """A dead worker's live gauges (queue length) stop counting; its counters stay."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Holds the worker back from accepting until its models are loaded and warmed up, heartbeating meanwhile."""
    service = worker.wsgi.extensions["glue_tf"]
    started = time.monotonic()
    while worker.alive and not service.wait_until_loaded(timeout=1.0):
        worker.notify()  # the master kills a worker silent for `timeout` seconds
    if worker.alive:
        worker.log.info("worker %s: models loaded and warmed up in %.1f s; accepting requests", os.getpid(),
                        time.monotonic() - started)
