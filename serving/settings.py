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
from glue_tf.precision import word as precision_word
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


def setting(variable: str, default, help: str, parse: Callable[[str], object] = string, *, shown: str | None = None):
    """A settings field: its environment variable, default, help line and parser, written once.

    The environment parsing (``from_env``), the ``glue-tf serve`` flags (``serving.cli``) and the
    table in ``docs/SERVING.md`` (``serving.settings_doc``) are all read off these fields.
    ``shown``: the default as the docs and ``--help`` write it, where ``repr`` would not do.
    """
    metadata = {"variable": variable, "help": help, "parse": parse, "shown": shown}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def described(cls) -> list[dataclasses.Field]:
    """The fields of a settings class that are read from a variable, in declaration order."""
    return [field for field in dataclasses.fields(cls) if "variable" in field.metadata]


def variables(cls) -> dict[str, tuple[str, Callable]]:
    """field -> (variable, parser) of a settings class."""
    return {field.name: (field.metadata["variable"], field.metadata["parse"]) for field in described(cls)}


def default_text(field: dataclasses.Field) -> str:
    """A field's default as ``--help`` and the docs write it."""
    if field.metadata["shown"]:
        return field.metadata["shown"].replace("`", "")
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    if default is None or default == {}:
        return "unset"
    if isinstance(default, bool):
        return "on" if default else "off"
    return f"{default:g}" if isinstance(default, float) else str(default)


def _read(cls, overrides: dict) -> dict:
    """field -> parsed value for each variable that is set (not empty) and not overridden."""
    values = {}
    for field, (variable, parse) in variables(cls).items():
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


MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the service reads from ``GLUE_TF_*`` variables (the table in docs/SERVING.md)."""

    model_dir: str = setting("GLUE_TF_MODEL_DIR", "runs/latest",
                             "a training run's `--out` folder (may be read-only)")
    state_dir: str = setting("GLUE_TF_STATE_DIR", "", "writable: job database (SQLite) and the workers' metric "
                             "files", shown="`$GLUE_TF_MODEL_DIR/serving-state`")
    batching: bool = setting("GLUE_TF_BATCHING", True, "merge concurrent requests into one model call", boolean)
    max_batch_size: int = setting("GLUE_TF_MAX_BATCH_SIZE", 64, "instances per merged model call", whole(1))
    batch_timeout_ms: float = setting("GLUE_TF_BATCH_TIMEOUT_MS", 5.0,
                                      "how long a batch waits for more requests, in milliseconds", number(0))
    max_queue: int = setting("GLUE_TF_MAX_QUEUE", 2048,
                             "instances waiting per batching queue; a full queue answers 429", whole(1))
    max_instances: int = setting("GLUE_TF_MAX_INSTANCES", 256, "instances per request (413 beyond)", whole(1))
    max_job_instances: int = setting("GLUE_TF_MAX_JOB_INSTANCES", 100_000, "instances per scoring job", whole(1))
    max_text_chars: int = setting("GLUE_TF_MAX_TEXT_CHARS", 10_000,
                                  "longer texts are refused (413); texts within it are truncated to the model's "
                                  "max sequence length", whole(1))
    max_body_bytes: int = setting("GLUE_TF_MAX_BODY_BYTES", 8 * MIB,
                                  "request body limit, with a Content-Length or chunked (413)", whole(1024),
                                  shown="8 MiB")
    max_json_depth: int = setting("GLUE_TF_MAX_JSON_DEPTH", 32,
                                  "deepest nesting of arrays and objects a body may have (400 beyond)",
                                  whole(8, 200))
    max_concurrent_jobs: int = setting("GLUE_TF_MAX_CONCURRENT_JOBS", 2,
                                       "job threads per worker; 4x this many queued or running jobs answer 429",
                                       whole(1))
    job_stale_seconds: float = setting("GLUE_TF_JOB_STALE_SECONDS", 30.0,
                                       "the lease on a chunk of a job: a chunk whose worker stopped renewing it "
                                       "for this long is scored by another", number(0, above=True))
    job_retention_seconds: float = setting("GLUE_TF_JOB_RETENTION_SECONDS", 604800.0,
                                           "how long finished jobs (their results) are kept", number(0),
                                           shown="604800 (7 days)")
    job_store_max_bytes: int = setting("GLUE_TF_JOB_STORE_MAX_BYTES", 1024 * MIB,
                                       "request bodies the job store holds at once: a job over it answers 429 "
                                       "with `Retry-After`, a body larger than all of it 413; a body is deleted "
                                       "when its job ends", whole(1), shown="1 GiB")
    database_url: str | None = setting("GLUE_TF_DATABASE_URL", None,
                                       "a libpq URL (`postgresql://user:password@host:5432/db`) of a PostgreSQL "
                                       "job store that every replica shares; unset: SQLite in "
                                       "`GLUE_TF_STATE_DIR`, one store per replica", postgres_url)
    api_token: str | None = setting("GLUE_TF_API_TOKEN", None,
                                    "when set, `/score*` and `/jobs*` need `Authorization: Bearer <token>`; "
                                    "required when bound beyond loopback")
    allow_anonymous_jobs: bool = setting("GLUE_TF_ALLOW_ANONYMOUS_JOBS", False,
                                         "start without `GLUE_TF_API_TOKEN` although bound beyond loopback, "
                                         "so anyone who reaches the port may submit, list and cancel jobs", boolean)
    reload_interval: float = setting("GLUE_TF_RELOAD_INTERVAL", 5.0,
                                     "seconds between model folder scans (0: no scans)", number(0))
    request_log: bool = setting("GLUE_TF_REQUEST_LOG", True,
                                "one JSON line per request on stderr: `request_id`, method, path, task, "
                                "instances, status, `latency_ms`, pid", boolean)
    version_policy: VersionPolicy = setting("GLUE_TF_MODEL_VERSION_POLICY", VersionPolicy("latest"),
                                            "TF Serving's version policy for every task: `latest`, `latest:N`, "
                                            "`all` or `specific:1,2` (of the complete versions on disk)",
                                            VersionPolicy.parse, shown="`latest`")
    version_labels: dict[str, int] = setting("GLUE_TF_MODEL_LABELS", {},
                                             "version labels for every task, e.g. `stable=1,canary=2` (labels of "
                                             "`A-Za-z0-9_-`)", parse_labels)
    model_config: dict[str, ModelConfig] | None = setting(
        "GLUE_TF_MODEL_CONFIG_FILE", None, "a TF Serving `model_config_list` (protobuf text format) with a policy "
        "and labels per task; not with the two above; a task it does not name is not served; `base_path` is "
        "ignored (models stay under `MODEL_DIR/models/<task>`)", config_file)
    precision: str = setting("GLUE_TF_PRECISION", "auto",
                             "which signature each version runs: `auto` (bfloat16 only where this machine has "
                             "bf16 units and the export measured bf16 within 0.3 dev points of float32 and "
                             "faster; else the compiled float32 signature where it was measured at least 1.1x as "
                             "fast, unless timed with oneDNN off where it is on here; else `serving_default`), "
                             "or one precision for every version. A request may name any signature "
                             "(`signature_name`); `/v1/tasks` shows the chosen one and why", precision_word)

    def __post_init__(self):
        # Job state and metrics need a writable place; the model folder is often a
        # read-only volume, so it is configurable and defaults beside the models.
        if not self.state_dir:
            object.__setattr__(self, "state_dir", os.path.join(self.model_dir, "serving-state"))

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Settings from the environment, each checked (``SettingsError``); ``overrides`` are taken as given."""
        names = variables(cls)

        def given(field: str) -> bool:
            return field in overrides or os.environ.get(names[field][0], "") != ""

        if given("model_config"):
            for field in ("version_policy", "version_labels"):
                if given(field):
                    raise SettingsError(f"{names[field][0]} cannot be used with GLUE_TF_MODEL_CONFIG_FILE: "
                                        "give the policy and labels in the file's model configs")
        values = {**_read(cls, overrides), **overrides}
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


LOOPBACK = ("127.", "localhost", "[::1]", "::1", "unix:")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """gunicorn's own settings (``PORT`` and ``GLUE_TF_*``), checked like ``Settings``."""

    port: int = setting("PORT", 8080, "the port of the default bind address", whole(1, 65535))
    bind: str = setting("GLUE_TF_BIND", "", "listen address; beyond loopback (`0.0.0.0:8080`, as the image "
                        "binds) the service needs `GLUE_TF_API_TOKEN` or `GLUE_TF_ALLOW_ANONYMOUS_JOBS`",
                        shown="`127.0.0.1:$PORT`")
    workers: int = setting("GLUE_TF_WORKERS", 2, "gunicorn `gthread` worker processes", whole(1))
    threads: int = setting("GLUE_TF_THREADS", 16, "threads per worker", whole(1))
    timeout: int = setting("GLUE_TF_TIMEOUT", 120, "seconds a worker may stay silent before the master "
                           "replaces it", whole(0))
    graceful_timeout: int = setting("GLUE_TF_GRACEFUL_TIMEOUT", 30, "seconds a stopping worker gets to finish "
                                    "its requests", whole(0))
    keepalive: int = setting("GLUE_TF_KEEPALIVE", 5, "seconds an idle keep-alive connection is held open",
                             whole(0))
    log_level: str = setting("GLUE_TF_LOG_LEVEL", "info", "gunicorn's log level: debug, info, warning, error "
                             "or critical", choice("debug", "info", "warning", "error", "critical"))
    access_log: str | None = setting("GLUE_TF_ACCESS_LOG", None, "a path (or `-`) for gunicorn's plain-text "
                                     "access log as well")

    def __post_init__(self):
        if not self.bind:
            object.__setattr__(self, "bind", f"127.0.0.1:{self.port}")

    @classmethod
    def from_env(cls, **overrides) -> "ServerSettings":
        return cls(**{**_read(cls, overrides), **overrides})

    @property
    def loopback_only(self) -> bool:
        """Whether every address bound is this host's own (no other machine can connect)."""
        return all(address.strip().startswith(LOOPBACK) for address in self.bind.split(","))


def check_exposure(settings: Settings, server: ServerSettings) -> None:
    """Refuses a service reachable from other hosts whose job endpoints anyone could use.

    Jobs hold request bodies on disk and any client may list and cancel them, so an
    open port needs a token unless the operator says, on purpose, that it does not.
    """
    if server.loopback_only or settings.api_token or settings.allow_anonymous_jobs:
        return
    raise SettingsError(f"GLUE_TF_BIND={server.bind!r} is reachable from other hosts: set GLUE_TF_API_TOKEN "
                        "for the job and scoring endpoints, or GLUE_TF_ALLOW_ANONYMOUS_JOBS=1 to serve them "
                        "to anyone")


# field -> (variable, parser): what each settings class reads (the deployment tests list them).
SETTINGS_VARIABLES = variables(Settings)
SERVER_VARIABLES = variables(ServerSettings)
