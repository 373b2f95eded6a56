"""Settings are checked at start: one-line errors, version policies, labels and TF Serving model config files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serving.model_config import ModelConfig, ModelConfigError, VersionPolicy, parse_labels, parse_model_config_file
from serving.settings import ServerSettings, Settings, SettingsError

REPO = Path(__file__).resolve().parents[1]

EXAMPLE = """\
model_config_list {
  config {
    name: 'cola'
    base_path: '/models/models/cola'
    model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: 'canary' value: 2 }
  }
  config { name: "rte" model_version_policy { all {} } }
}
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GLUE_TF_") or name == "PORT":
            monkeypatch.delenv(name)


def write(tmp_path, text: str, name: str = "models.config") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- every variable is checked --------------------------------------------------------------
BAD = [
    ("GLUE_TF_MAX_BATCH_SIZE", "abc"), ("GLUE_TF_MAX_BATCH_SIZE", "0"), ("GLUE_TF_MAX_BATCH_SIZE", "-1"),
    ("GLUE_TF_MAX_BATCH_SIZE", "2.5"), ("GLUE_TF_MAX_QUEUE", "0"), ("GLUE_TF_MAX_INSTANCES", "abc"),
    ("GLUE_TF_MAX_JOB_INSTANCES", "-1"), ("GLUE_TF_MAX_TEXT_CHARS", "0"), ("GLUE_TF_MAX_BODY_BYTES", "1000"),
    ("GLUE_TF_MAX_CONCURRENT_JOBS", "0"), ("GLUE_TF_BATCH_TIMEOUT_MS", "-1"), ("GLUE_TF_BATCH_TIMEOUT_MS", "abc"),
    ("GLUE_TF_BATCH_TIMEOUT_MS", "nan"), ("GLUE_TF_RELOAD_INTERVAL", "-0.5"), ("GLUE_TF_JOB_STALE_SECONDS", "0"),
    ("GLUE_TF_JOB_STALE_SECONDS", "inf"), ("GLUE_TF_BATCHING", "maybe"), ("GLUE_TF_REQUEST_LOG", "2"),
    ("GLUE_TF_MODEL_VERSION_POLICY", "newest"), ("GLUE_TF_MODEL_LABELS", "stable"), ("GLUE_TF_PRECISION", "int8"),
    ("GLUE_TF_MAX_JSON_DEPTH", "7"), ("GLUE_TF_MAX_JSON_DEPTH", "201"), ("GLUE_TF_JOB_STORE_MAX_BYTES", "0"),
    ("GLUE_TF_JOB_STORE_MAX_BYTES", "1e9"), ("GLUE_TF_ALLOW_ANONYMOUS_JOBS", "sure"),
]


@pytest.mark.parametrize("variable,value", BAD)
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r}: expected ")
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("variable,value", [
    ("GLUE_TF_WORKERS", "two"), ("GLUE_TF_WORKERS", "0"), ("GLUE_TF_THREADS", "-1"), ("GLUE_TF_TIMEOUT", "abc"),
    ("GLUE_TF_GRACEFUL_TIMEOUT", "-1"), ("GLUE_TF_KEEPALIVE", "1.5"), ("PORT", "http"), ("PORT", "70000"),
    ("GLUE_TF_LOG_LEVEL", "loud"),
])
def test_a_bad_gunicorn_value_is_one_line_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^{variable}={value!r}: expected [^\n]+$"):
        ServerSettings.from_env()


def test_the_message_says_what_is_accepted(monkeypatch):
    monkeypatch.setenv("GLUE_TF_MAX_BATCH_SIZE", "abc")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert str(caught.value) == "GLUE_TF_MAX_BATCH_SIZE='abc': expected a whole number >= 1"
    monkeypatch.setenv("GLUE_TF_MAX_BATCH_SIZE", "1")
    monkeypatch.setenv("GLUE_TF_BATCHING", "maybe")
    with pytest.raises(SettingsError, match="1/0, true/false, yes/no, on/off"):
        Settings.from_env()


def test_defaults():
    settings = Settings.from_env()
    assert settings.model_dir == "runs/latest"
    assert settings.state_dir == os.path.join("runs/latest", "serving-state")
    assert (settings.batching, settings.max_batch_size, settings.batch_timeout_ms, settings.max_queue) == (True, 64, 5.0, 2048)
    assert settings.max_body_bytes == 8 * 1024 * 1024 and settings.api_token is None and settings.request_log
    assert settings.version_policy == VersionPolicy("latest") and settings.version_labels == {}
    assert settings.model_config is None and settings.precision == "auto"
    server = ServerSettings.from_env()
    assert (server.bind, server.workers, server.threads, server.timeout) == ("127.0.0.1:8080", 2, 16, 120)
    assert (server.graceful_timeout, server.keepalive, server.log_level, server.access_log) == (30, 5, "info", None)


def test_good_values_parse(monkeypatch):
    env = {
        "GLUE_TF_MODEL_DIR": "/models", "GLUE_TF_BATCHING": "Off", "GLUE_TF_MAX_BATCH_SIZE": " 8 ",
        "GLUE_TF_BATCH_TIMEOUT_MS": "0", "GLUE_TF_MAX_QUEUE": "1", "GLUE_TF_MAX_INSTANCES": "3",
        "GLUE_TF_MAX_JOB_INSTANCES": "20000", "GLUE_TF_MAX_TEXT_CHARS": "1", "GLUE_TF_MAX_BODY_BYTES": "1024",
        "GLUE_TF_MAX_CONCURRENT_JOBS": "4", "GLUE_TF_RELOAD_INTERVAL": "0.5", "GLUE_TF_JOB_STALE_SECONDS": "0.25",
        "GLUE_TF_API_TOKEN": "s3cret", "GLUE_TF_REQUEST_LOG": "YES", "GLUE_TF_MODEL_VERSION_POLICY": "latest:2",
        "GLUE_TF_MODEL_LABELS": "stable=1, canary=2", "GLUE_TF_MAX_QUEUE_UNKNOWN": "ignored",
        "GLUE_TF_PRECISION": "Float32",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.model_dir == "/models" and settings.state_dir == os.path.join("/models", "serving-state")
    assert settings.batching is False and settings.request_log is True
    assert (settings.max_batch_size, settings.batch_timeout_ms, settings.max_queue, settings.max_instances) == (8, 0.0, 1, 3)
    assert (settings.max_job_instances, settings.max_text_chars, settings.max_body_bytes) == (20000, 1, 1024)
    assert (settings.max_concurrent_jobs, settings.reload_interval, settings.job_stale_seconds) == (4, 0.5, 0.25)
    assert settings.api_token == "s3cret" and settings.precision == "float32"
    assert settings.version_policy == VersionPolicy("latest", num_versions=2)
    assert settings.version_labels == {"stable": 1, "canary": 2}
    for word, value in [("1", True), ("0", False), ("TRUE", True), ("false", False), ("on", True), ("no", False)]:
        monkeypatch.setenv("GLUE_TF_BATCHING", word)
        assert Settings.from_env().batching is value
    monkeypatch.setenv("GLUE_TF_STATE_DIR", "/state")
    assert Settings.from_env().state_dir == "/state"


def test_an_empty_variable_is_unset(monkeypatch):
    monkeypatch.setenv("GLUE_TF_MAX_BATCH_SIZE", "")
    monkeypatch.setenv("GLUE_TF_API_TOKEN", "")
    settings = Settings.from_env()
    assert settings.max_batch_size == 64 and settings.api_token is None


def test_overrides_win_and_are_not_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GLUE_TF_MAX_BATCH_SIZE", "abc")
    settings = Settings.from_env(model_dir=str(tmp_path), max_batch_size=4, version_policy=VersionPolicy("all"))
    assert settings.max_batch_size == 4 and settings.version_policy.kind == "all"
    assert settings.state_dir == os.path.join(str(tmp_path), "serving-state")
    assert Settings.from_env(max_batch_size=4, state_dir="/s").state_dir == "/s"
    monkeypatch.setenv("GLUE_TF_WORKERS", "x")
    assert ServerSettings.from_env(workers=3, port=9000).bind == "127.0.0.1:9000"


def test_gunicorn_values_parse(monkeypatch):
    for name, value in {"PORT": "9000", "GLUE_TF_WORKERS": "1", "GLUE_TF_THREADS": "4", "GLUE_TF_TIMEOUT": "0",
                        "GLUE_TF_GRACEFUL_TIMEOUT": "10", "GLUE_TF_KEEPALIVE": "0", "GLUE_TF_LOG_LEVEL": "DEBUG",
                        "GLUE_TF_ACCESS_LOG": "-"}.items():
        monkeypatch.setenv(name, value)
    server = ServerSettings.from_env()
    assert server == ServerSettings(port=9000, bind="127.0.0.1:9000", workers=1, threads=4, timeout=0,
                                    graceful_timeout=10, keepalive=0, log_level="debug", access_log="-")
    monkeypatch.setenv("GLUE_TF_BIND", "127.0.0.1:0")
    assert ServerSettings.from_env().bind == "127.0.0.1:0"


# --- version policies and labels ------------------------------------------------------------
@pytest.mark.parametrize("text,policy,selected", [
    ("latest", VersionPolicy("latest"), [7]),
    (" LATEST ", VersionPolicy("latest", 1), [7]),
    ("latest:1", VersionPolicy("latest"), [7]),
    ("latest:2", VersionPolicy("latest", num_versions=2), [3, 7]),
    ("latest:10", VersionPolicy("latest", num_versions=10), [1, 2, 3, 7]),
    ("all", VersionPolicy("all"), [1, 2, 3, 7]),
    ("specific:2", VersionPolicy("specific", versions=(2,)), [2]),
    ("specific:7, 1,5", VersionPolicy("specific", versions=(1, 5, 7)), [1, 7]),
    ("specific:4", VersionPolicy("specific", versions=(4,)), []),
])
def test_version_policy_parse_and_select(text, policy, selected):
    parsed = VersionPolicy.parse(text)
    assert parsed == policy
    assert parsed.select([7, 3, 1, 2, 3]) == selected
    assert parsed.select([]) == []
    assert VersionPolicy.parse(str(parsed)) == parsed


@pytest.mark.parametrize("text", ["latest:0", "latest:", "latest:-1", "latest:x", "specific:", "specific:a",
                                  "specific:1,,2", "specific:0", "specific", "all:2", "newest", ""])
def test_bad_version_policies(text):
    with pytest.raises(ValueError, match="expected latest, latest:N, all or specific:V1,V2"):
        VersionPolicy.parse(text)


def test_version_policy_checks_itself():
    with pytest.raises(ValueError):
        VersionPolicy("newest")
    with pytest.raises(ValueError):
        VersionPolicy("latest", num_versions=0)
    with pytest.raises(ValueError):
        VersionPolicy("specific")
    assert VersionPolicy("specific", versions=(2, 1, 2)).versions == (1, 2)


def test_labels():
    assert parse_labels("stable=1,canary=2") == {"stable": 1, "canary": 2}
    assert parse_labels(" a-b_C9 = 10 ") == {"a-b_C9": 10}


@pytest.mark.parametrize("text", ["stable", "stable=", "stable=0", "stable=-1", "stable=x", "=1", "sta ble=1",
                                  "stable=1,stable=2", "stable=1,", "st.able=1"])
def test_bad_labels(text):
    with pytest.raises(ValueError, match="expected label=version pairs"):
        parse_labels(text)


def test_a_label_outside_a_specific_policy_is_an_error(monkeypatch):
    monkeypatch.setenv("GLUE_TF_MODEL_VERSION_POLICY", "specific:1,2")
    monkeypatch.setenv("GLUE_TF_MODEL_LABELS", "stable=3")
    with pytest.raises(SettingsError, match=r"^GLUE_TF_MODEL_LABELS='stable=3': label 'stable' names version 3"):
        Settings.from_env()


# --- the model config file ------------------------------------------------------------------
def test_the_example_config_file(tmp_path):
    models = parse_model_config_file(write(tmp_path, EXAMPLE))
    assert models == {
        "cola": ModelConfig(VersionPolicy("specific", versions=(1, 2)), {"stable": 1, "canary": 2}),
        "rte": ModelConfig(VersionPolicy("all"), {}),
    }


def test_more_of_the_text_format(tmp_path):
    path = write(tmp_path, r"""
        # a comment
        model_config_list: {
          config: { name: "sst2"; model_version_policy: { latest: { num_versions: 3 } } },
          config { name: 'mrpc' model_version_policy { specific { versions: [3, 1] } } }  # trailing
          config { name: "qq\x70" version_labels { key: "it's" value: 4 } }
          config { name: 'stsb' model_version_policy { latest {} } }
        }
        """)
    with pytest.raises(ModelConfigError, match="label \"it's\": labels are made of"):
        parse_model_config_file(path)
    path.write_text(path.read_text().replace("it's", "it\\x2ds"))
    assert parse_model_config_file(path) == {
        "sst2": ModelConfig(VersionPolicy("latest", num_versions=3), {}),
        "mrpc": ModelConfig(VersionPolicy("specific", versions=(1, 3)), {}),
        "qqp": ModelConfig(VersionPolicy("latest"), {"it-s": 4}),
        "stsb": ModelConfig(VersionPolicy("latest"), {}),
    }


BAD_FILES = [
    ("model_config_list {\n  config {\n    name: 'cola'\n    model_path: '/x'\n  }\n}\n", 4, "unknown field 'model_path'"),
    ("model_config_list {\n  config {\n    name: 'cola'\n    model_version_policy { specific { versions: 0 } }\n  }\n}\n",
     4, "version 0"),
    ("model_config_list {\n  config {\n    name: 'cola'\n    model_version_policy { specific { versions: 'one' } }\n"
     "  }\n}\n", 4, "versions must be a whole number"),
    ("model_config_list {\n  config {\n    name: 'cola'\n    model_version_policy { latest { num_versions: 0 } }\n"
     "  }\n}\n", 4, "num_versions 0"),
    ("model_config_list {\n  config {\n    name: 'colaa'\n  }\n}\n", 3, "unknown model 'colaa'"),
    ("model_config_list {\n  config {\n    name: 'ax'\n  }\n}\n", 3, "mnli"),
    ("model_config_list {\n  config {\n    name: 'cola\n  }\n}\n", 3, "unterminated string"),
    ("model_config_list {\n  config {\n    name: 'cola'\n", 2, "unterminated '{'"),
    ("model_config_list {\n  config { name: 'cola' }\n}\n}\n", 4, "expected a field name, not '}'"),
    ("model_config_list {\n  config { name: 'cola' }\n  config { name: 'cola' }\n}\n", 3, "configured twice"),
    ("model_config_list {\n  config { name: 'cola' name: 'rte' }\n}\n", 2, "name is given more than once"),
    ("model_config_list {\n  config { name: 'cola' model_platform: 'pytorch' }\n}\n", 2, "model_platform 'pytorch'"),
    ("model_config_list {\n  config { name: 'cola'\n model_version_policy { all {} latest {} } }\n}\n", 3,
     "exactly one of"),
    ("model_config_list {\n  config { name: 'cola'\n version_labels { key: 'a' value: 1 }\n"
     " version_labels { key: 'a' value: 1 } }\n}\n", 4, "given twice"),
    ("model_config_list {\n  config { name: 'cola'\n model_version_policy { specific { versions: 1 } }\n"
     " version_labels { key: 'canary' value: 2 } }\n}\n", 4, "never serves"),
    ("model_config_list {\n  config { name cola }\n}\n", 2, "expected ':' after name"),
    ("\n\nmodel_config_list {\n  config { name: 'cola' @ }\n}\n", 4, "unexpected character '@'"),
    ("model_config_list {\n}\n", 1, "names no model"),
    ("# nothing\n", 1, "no model_config_list"),
]


@pytest.mark.parametrize("text,line,message", BAD_FILES)
def test_a_bad_config_file_names_the_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ModelConfigError) as caught:
        parse_model_config_file(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


def test_a_bad_config_file_stops_settings_with_one_line(monkeypatch, tmp_path):
    path = write(tmp_path, BAD_FILES[0][0])
    monkeypatch.setenv("GLUE_TF_MODEL_CONFIG_FILE", str(path))
    with pytest.raises(SettingsError, match=f"^GLUE_TF_MODEL_CONFIG_FILE: {path}:4: unknown field 'model_path'[^\n]*$"):
        Settings.from_env()
    monkeypatch.setenv("GLUE_TF_MODEL_CONFIG_FILE", str(tmp_path / "missing.config"))
    with pytest.raises(SettingsError, match="^GLUE_TF_MODEL_CONFIG_FILE: .*missing.config: cannot read it"):
        Settings.from_env()


@pytest.mark.parametrize("variable,value", [("GLUE_TF_MODEL_VERSION_POLICY", "all"),
                                            ("GLUE_TF_MODEL_LABELS", "stable=1")])
def test_the_config_file_excludes_the_policy_variables(monkeypatch, tmp_path, variable, value):
    monkeypatch.setenv("GLUE_TF_MODEL_CONFIG_FILE", str(write(tmp_path, EXAMPLE)))
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^{variable} cannot be used with GLUE_TF_MODEL_CONFIG_FILE"):
        Settings.from_env()


def test_model_config_for(monkeypatch, tmp_path):
    monkeypatch.setenv("GLUE_TF_MODEL_CONFIG_FILE", str(write(tmp_path, EXAMPLE)))
    settings = Settings.from_env()
    assert settings.model_config_for("cola") == ModelConfig(VersionPolicy("specific", versions=(1, 2)),
                                                             {"stable": 1, "canary": 2})
    assert settings.model_config_for("rte") == ModelConfig(VersionPolicy("all"), {})
    assert settings.model_config_for("sst2") is None  # not in the file: not served, as in TF Serving
    monkeypatch.delenv("GLUE_TF_MODEL_CONFIG_FILE")
    assert Settings.from_env().model_config_for("sst2") == ModelConfig(VersionPolicy("latest"), {})
    monkeypatch.setenv("GLUE_TF_MODEL_VERSION_POLICY", "latest:2")
    monkeypatch.setenv("GLUE_TF_MODEL_LABELS", "stable=3")
    assert Settings.from_env().model_config_for("mnli") == ModelConfig(VersionPolicy("latest", 2), {"stable": 3})


def test_ax_follows_the_mnli_model(monkeypatch, tmp_path):
    monkeypatch.setenv("GLUE_TF_MODEL_CONFIG_FILE", str(write(tmp_path, "model_config_list { config { name: 'mnli' } }")))
    assert Settings.from_env().model_config_for("ax") == ModelConfig(VersionPolicy("latest"), {})


# --- the master stays light, and stops at once ----------------------------------------------
def test_the_settings_modules_import_no_heavy_library():
    code = ("import sys, serving.settings, serving.model_config; "
            "print(sorted(m for m in ('tensorflow', 'flask', 'numpy', 'google.protobuf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("variable,value", [("GLUE_TF_MAX_BATCH_SIZE", "abc"), ("GLUE_TF_WORKERS", "two")])
def test_gunicorn_stops_at_once_with_one_line(tmp_path, variable, value):
    env = {name: v for name, v in os.environ.items() if not name.startswith("GLUE_TF_") and name != "PORT"}
    env.update(GLUE_TF_MODEL_DIR=str(tmp_path / "models"), GLUE_TF_STATE_DIR=str(tmp_path / "state"),
               GLUE_TF_BIND="127.0.0.1:0", **{variable: value})
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "serving/gunicorn.conf.py"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"glue-tf: {variable}={value!r}: expected a whole number >= 1" in output.splitlines()
    assert "Traceback" not in output
    assert "Booting worker" not in output


def test_a_database_url_must_be_postgresql_and_is_never_echoed(monkeypatch):
    monkeypatch.setenv("GLUE_TF_DATABASE_URL", "mysql://admin:hunter2@db/jobs")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert "GLUE_TF_DATABASE_URL" in str(refused.value) and "postgresql://" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    monkeypatch.setenv("GLUE_TF_DATABASE_URL", "postgresql://glue:pw@db:5432/gluetf")
    assert Settings.from_env().database_url == "postgresql://glue:pw@db:5432/gluetf"


# --- one definition: variables, flags and the docs table -------------------------------------
def test_the_docs_table_is_the_one_the_dataclasses_generate():
    from serving import settings_doc

    document = settings_doc.DOC.read_text(encoding="utf-8")
    assert settings_doc.rendered(document) == document, "run: python -m serving.settings_doc"
    for name in ("GLUE_TF_KEEPALIVE", "GLUE_TF_LOG_LEVEL", "GLUE_TF_JOB_STORE_MAX_BYTES", "PORT"):
        assert f"| `{name}` |" in document


# A good value for each setting's flag (the others take "7").
FLAG_VALUES = {"model_dir": "/m", "state_dir": "/s", "port": "9000", "bind": "127.0.0.1:9001", "batching": "off",
               "allow_anonymous_jobs": "0", "request_log": "on", "log_level": "debug", "precision": "float32",
               "version_policy": "latest:2", "version_labels": "stable=1", "max_body_bytes": "4096",
               "max_json_depth": "16", "api_token": "t", "access_log": "-",
               "database_url": "postgresql://u@db/j"}


def test_every_setting_has_a_serve_flag_that_writes_its_variable(monkeypatch):
    import argparse

    from serving import cli
    from serving.settings import SERVER_VARIABLES, SETTINGS_VARIABLES

    serve = cli.add_parser(argparse.ArgumentParser().add_subparsers())
    every = {**SERVER_VARIABLES, **SETTINGS_VARIABLES}
    del every["model_config"]  # a file: its parser reads it
    argv = [part for field in every for part in ("--" + field.replace("_", "-"), FLAG_VALUES.get(field, "7"))]
    env = cli.environment(serve.parse_args(argv), base={})
    assert env == {variable: FLAG_VALUES.get(field, "7") for field, (variable, _) in every.items()}
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    assert Settings.from_env().max_batch_size == 7 and ServerSettings.from_env().bind == "127.0.0.1:9001"
    port_only = cli.environment(serve.parse_args(["--port", "9000"]), base={"GLUE_TF_BIND": "0.0.0.0:1"})
    assert port_only == {"PORT": "9000"}  # --port alone: loopback on that port, whatever the environment bound
    with pytest.raises(SystemExit):
        serve.parse_args(["--max-batch-size", "abc"])  # checked by the variable's own parser


@pytest.mark.parametrize("bind,token,anonymous,refused", [
    ("127.0.0.1:8080", None, False, False), ("localhost:8080", None, False, False),
    ("[::1]:8080", None, False, False), ("unix:/run/glue.sock", None, False, False),
    ("0.0.0.0:8080", None, False, True), ("10.1.2.3:8080", None, False, True),
    ("127.0.0.1:1,0.0.0.0:2", None, False, True),
    ("0.0.0.0:8080", "s3cret", False, False), ("0.0.0.0:8080", None, True, False),
])
def test_beyond_loopback_jobs_need_a_token_or_an_explicit_yes(bind, token, anonymous, refused):
    from serving.settings import check_exposure

    settings = Settings.from_env(api_token=token, allow_anonymous_jobs=anonymous)
    server = ServerSettings.from_env(bind=bind)
    if refused:
        with pytest.raises(SettingsError, match="GLUE_TF_API_TOKEN.*GLUE_TF_ALLOW_ANONYMOUS_JOBS=1"):
            check_exposure(settings, server)
    else:
        check_exposure(settings, server)


def test_gunicorn_refuses_to_serve_jobs_to_anyone_on_all_interfaces(tmp_path):
    env = {name: v for name, v in os.environ.items() if not name.startswith("GLUE_TF_") and name != "PORT"}
    env.update(GLUE_TF_MODEL_DIR=str(tmp_path / "models"), GLUE_TF_STATE_DIR=str(tmp_path / "state"),
               GLUE_TF_BIND="0.0.0.0:0")
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "serving/gunicorn.conf.py"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "Booting worker" not in result.stderr
    assert any(line.startswith("glue-tf: GLUE_TF_BIND='0.0.0.0:0' is reachable from other hosts")
               for line in (result.stdout + result.stderr).splitlines())
