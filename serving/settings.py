"""Service settings, all from environment variables (12-factor), with defaults that work locally.

Every variable is checked when it is read (``Settings.from_env()`` for the app,
``ServerSettings.from_env()`` for gunicorn's own), so a bad value stops the server
before any worker starts, with one line such as
``GLUE_TF_MAX_BATCH_SIZE='abc': expected a whole number >= 1`` (``SettingsError``).
An empty variable counts as unset.

Which model versions are served follows TF Serving: either
``GLUE_TF_MODEL_VERSION_POLICY`` (``latest``, ``latest:N``, ``all``,
``specific:1,2``) and ``GLUE_TF_MODEL_LABELS`` (``stable=1,canary=2``) for every
task, or ``GLUE_TF_MODEL_CONFIG_FILE``, a TF Serving ``model_config_list`` in
protobuf text format with a ``config`` per task (not both). With a config file, a
task the file does not name is not served at all, as in TF Serving. A config's
``base_path`` is accepted and ignored: models always live at
``<GLUE_TF_MODEL_DIR>/models/<task>``; its ``model_platform`` must be
``tensorflow`` if given.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Callable

from glue_tf.errors import GlueTfError
from glue_tf.signature_choice import PRECISIONS
from glue_tf.tasks import TASKS
from serving.model_config import (ModelConfig, VersionPolicy, check_labels, parse_labels,
                                  parse_model_config_file)


class SettingsError(GlueTfError, ValueError):
    """A bad environment variable; the message is one line naming it, its value and what it accepts."""


# --- parsers: text -> value, or ValueError saying what is accepted ---------------------------
_WHOLE = re.compile(r"[+-]?[0-9]+")


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    accepts = f"a whole number >= {minimum}" if maximum is None else f"a whole number from {minimum} to {maximum}"

    def parse(text: str) -> int:
        if not _WHOLE.fullmatch(text.strip()):
            raise ValueError(f"expected {accepts}")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(f"expected {accepts}")
        return value

    return parse


def number(minimum: float, *, above: bool = False) -> Callable[[str], float]:
    accepts = f"a number {'>' if above else '>='} {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected {accepts}") from None
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise ValueError(f"expected {accepts}")
        return value

    return parse


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError("expected one of 1/0, true/false, yes/no, on/off") from None


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text.strip().lower()

    return parse


def string(value: str) -> str:
    return value


def postgres_url(value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("expected a PostgreSQL URL, postgresql://user:password@host:5432/database")
    return value


def config_file(path: str) -> dict[str, ModelConfig]:
    return parse_model_config_file(path)  # its errors name the file and line


def _read(variables: dict[str, tuple[str, Callable]], overrides: dict) -> dict:
    """field -> parsed value for each variable that is set (not empty) and not overridden."""
    values = {}
    for field, (variable, parse) in variables.items():
        raw = os.environ.get(variable, "")
        if field in overrides or raw == "":
            continue
        try:
            values[field] = parse(raw)
        except ValueError as error:
            message = " ".join(str(error).split())  # one line, whatever the parser said
            if parse in (config_file, postgres_url):  # a path says it all; a URL may hold a password
                raise SettingsError(f"{variable}: {message}") from None
            raise SettingsError(f"{variable}={raw!r}: {message}") from None
    return values


# field -> (variable, parser); GLUE_TF_MODEL_DIR and GLUE_TF_STATE_DIR are read in from_env.
SETTINGS_VARIABLES: dict[str, tuple[str, Callable]] = {
    "batching": ("GLUE_TF_BATCHING", boolean),
    "max_batch_size": ("GLUE_TF_MAX_BATCH_SIZE", whole(1)),
    "batch_timeout_ms": ("GLUE_TF_BATCH_TIMEOUT_MS", number(0)),
    "max_queue": ("GLUE_TF_MAX_QUEUE", whole(1)),
    "max_instances": ("GLUE_TF_MAX_INSTANCES", whole(1)),
    "max_job_instances": ("GLUE_TF_MAX_JOB_INSTANCES", whole(1)),
    "max_text_chars": ("GLUE_TF_MAX_TEXT_CHARS", whole(1)),
    "max_body_bytes": ("GLUE_TF_MAX_BODY_BYTES", whole(1024)),
    "max_concurrent_jobs": ("GLUE_TF_MAX_CONCURRENT_JOBS", whole(1)),
    "reload_interval": ("GLUE_TF_RELOAD_INTERVAL", number(0)),
    "job_stale_seconds": ("GLUE_TF_JOB_STALE_SECONDS", number(0, above=True)),
    "api_token": ("GLUE_TF_API_TOKEN", string),
    "request_log": ("GLUE_TF_REQUEST_LOG", boolean),
    "version_policy": ("GLUE_TF_MODEL_VERSION_POLICY", VersionPolicy.parse),
    "version_labels": ("GLUE_TF_MODEL_LABELS", parse_labels),
    "model_config": ("GLUE_TF_MODEL_CONFIG_FILE", config_file),
    "database_url": ("GLUE_TF_DATABASE_URL", postgres_url),
    "job_retention_seconds": ("GLUE_TF_JOB_RETENTION_SECONDS", number(0)),
    "precision": ("GLUE_TF_PRECISION", choice(*PRECISIONS)),
}


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
    version_policy: VersionPolicy = VersionPolicy("latest")
    version_labels: dict[str, int] = dataclasses.field(default_factory=dict)
    model_config: dict[str, ModelConfig] | None = None  # from GLUE_TF_MODEL_CONFIG_FILE; None: no file
    database_url: str | None = None  # libpq URL of a PostgreSQL job store; None: SQLite in state_dir
    job_retention_seconds: float = 604800.0  # finished jobs are kept this long (7 days)
    precision: str = "auto"  # which signature each version runs: glue_tf.signature_choice

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Settings from the environment, each checked (``SettingsError``); ``overrides`` are taken as given."""
        def given(field: str) -> bool:
            return field in overrides or os.environ.get(SETTINGS_VARIABLES[field][0], "") != ""

        if given("model_config"):
            for field in ("version_policy", "version_labels"):
                if given(field):
                    variable = SETTINGS_VARIABLES[field][0]
                    raise SettingsError(f"{variable} cannot be used with GLUE_TF_MODEL_CONFIG_FILE: "
                                        "give the policy and labels in the file's model configs")
        values = _read(SETTINGS_VARIABLES, overrides)
        model_dir = overrides.get("model_dir") or os.environ.get("GLUE_TF_MODEL_DIR") or "runs/latest"
        # Job state and metrics need a writable place; the model folder is often a
        # read-only volume, so it is configurable and defaults beside the models.
        state_dir = os.environ.get("GLUE_TF_STATE_DIR") or os.path.join(model_dir, "serving-state")
        values.update(model_dir=model_dir, state_dir=state_dir)
        values.update(overrides)
        try:
            check_labels(values.get("version_policy", VersionPolicy("latest")), values.get("version_labels", {}))
        except ValueError as error:
            raise SettingsError(f"GLUE_TF_MODEL_LABELS={os.environ.get('GLUE_TF_MODEL_LABELS', '')!r}: {error} "
                                "(GLUE_TF_MODEL_VERSION_POLICY)") from None
        return cls(**values)

    def model_config_for(self, task_name: str) -> ModelConfig | None:
        """The version policy and labels of a task's model; None if it must not be served.

        With a config file, a task it does not name is not served (TF Serving serves
        only the models its config lists); otherwise every task gets
        ``GLUE_TF_MODEL_VERSION_POLICY`` and ``GLUE_TF_MODEL_LABELS`` (latest 1, no labels).
        A task answered by another task's model (AX: MNLI) gets that model's config.
        """
        name = TASKS[task_name].predicted_by if task_name in TASKS else task_name
        if self.model_config is not None:
            return self.model_config.get(name)
        return ModelConfig(self.version_policy, dict(self.version_labels))


# field -> (variable, parser) of what gunicorn itself reads (serving/gunicorn.conf.py).
SERVER_VARIABLES: dict[str, tuple[str, Callable]] = {
    "port": ("PORT", whole(1, 65535)),
    "bind": ("GLUE_TF_BIND", string),
    "workers": ("GLUE_TF_WORKERS", whole(1)),
    "threads": ("GLUE_TF_THREADS", whole(1)),
    "timeout": ("GLUE_TF_TIMEOUT", whole(0)),
    "graceful_timeout": ("GLUE_TF_GRACEFUL_TIMEOUT", whole(0)),
    "keepalive": ("GLUE_TF_KEEPALIVE", whole(0)),
    "log_level": ("GLUE_TF_LOG_LEVEL", choice("debug", "info", "warning", "error", "critical")),
    "access_log": ("GLUE_TF_ACCESS_LOG", string),
}


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """gunicorn's own settings (``PORT`` and ``GLUE_TF_*``), checked like ``Settings``."""

    port: int = 8080
    bind: str | None = None  # default 0.0.0.0:$PORT
    workers: int = 2
    threads: int = 16
    timeout: int = 120
    graceful_timeout: int = 30
    keepalive: int = 5
    log_level: str = "info"
    access_log: str | None = None

    @classmethod
    def from_env(cls, **overrides) -> "ServerSettings":
        values = {**_read(SERVER_VARIABLES, overrides), **overrides}
        values.setdefault("bind", f"0.0.0.0:{values.get('port', cls.port)}")
        return cls(**values)
