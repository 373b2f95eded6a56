"""Service settings, all from environment variables (12-factor), with defaults that work locally."""

from __future__ import annotations

import dataclasses
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the service reads from ``GLUE_TF_*`` variables (see README, "Serving")."""

    model_dir: str
    state_dir: str
    batching: bool = True
    max_batch_size: int = 64
    batch_timeout_ms: float = 5.0
    max_queue: int = 2048
    max_instances: int = 256
    max_job_instances: int = 100_000
    max_text_chars: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_concurrent_jobs: int = 2
    reload_interval: float = 5.0
    job_stale_seconds: float = 30.0
    api_token: str | None = None
    request_log: bool = True

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        model_dir = os.environ.get("GLUE_TF_MODEL_DIR", "runs/latest")
        values = dict(
            model_dir=model_dir,
            # Job state and metrics need a writable place; the model folder is often a
            # read-only volume, so it is configurable and defaults beside the models.
            state_dir=os.environ.get("GLUE_TF_STATE_DIR") or os.path.join(model_dir, "serving-state"),
            batching=_bool("GLUE_TF_BATCHING", True),
            max_batch_size=_int("GLUE_TF_MAX_BATCH_SIZE", 64),
            batch_timeout_ms=_float("GLUE_TF_BATCH_TIMEOUT_MS", 5.0),
            max_queue=_int("GLUE_TF_MAX_QUEUE", 2048),
            max_instances=_int("GLUE_TF_MAX_INSTANCES", 256),
            max_job_instances=_int("GLUE_TF_MAX_JOB_INSTANCES", 100_000),
            max_text_chars=_int("GLUE_TF_MAX_TEXT_CHARS", 10_000),
            max_body_bytes=_int("GLUE_TF_MAX_BODY_BYTES", 8 * 1024 * 1024),
            max_concurrent_jobs=_int("GLUE_TF_MAX_CONCURRENT_JOBS", 2),
            reload_interval=_float("GLUE_TF_RELOAD_INTERVAL", 5.0),
            job_stale_seconds=_float("GLUE_TF_JOB_STALE_SECONDS", 30.0),
            api_token=os.environ.get("GLUE_TF_API_TOKEN") or None,
            request_log=_bool("GLUE_TF_REQUEST_LOG", True),
        )
        values.update(overrides)
        return cls(**values)
