"""gunicorn settings, each from an environment variable (see README, "Serving").

Models are loaded in every worker after the fork (``preload_app`` stays off:
TensorFlow's thread pools do not survive a fork). ``gthread`` workers let
concurrent requests of one worker meet in the batching queue.
"""

import os
import shutil

bind = os.environ.get("GLUE_TF_BIND", f"0.0.0.0:{os.environ.get('PORT', '8080')}")
workers = int(os.environ.get("GLUE_TF_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GLUE_TF_THREADS", "16"))
timeout = int(os.environ.get("GLUE_TF_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GLUE_TF_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GLUE_TF_KEEPALIVE", "5"))
preload_app = False
# The service writes one JSON line per request itself (GLUE_TF_REQUEST_LOG); gunicorn's
# plain-text access log is off unless asked for.
accesslog = os.environ.get("GLUE_TF_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GLUE_TF_LOG_LEVEL", "info")
limit_request_line = 8190
wsgi_app = "serving.wsgi:app"


def on_starting(server):
    """A new server starts its metrics from zero: drop the old workers' snapshots."""
    model_dir = os.environ.get("GLUE_TF_MODEL_DIR", "runs/latest")
    state_dir = os.environ.get("GLUE_TF_STATE_DIR") or os.path.join(model_dir, "serving-state")
    shutil.rmtree(os.path.join(state_dir, "metrics"), ignore_errors=True)
