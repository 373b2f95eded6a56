"""The Flask app in-process (``app.test_client()``) over tiny exports: routes, validation, isolation, versions.

What only a real server shows (gunicorn workers, kills, reloads under load) is in
``test_serving.py`` and ``test_tf_serving_api.py``.
"""

from __future__ import annotations

import base64
import shutil
import threading

import pytest

from serving.app import create_app
from serving.settings import Settings


def _app(model_dir, state_dir, **overrides):
    settings = Settings.from_env(model_dir=str(model_dir), state_dir=str(state_dir), reload_interval=0,
                                 max_instances=8, max_text_chars=200, request_log=False, **overrides)
    app = create_app(settings)
    assert app.extensions["glue_tf"].wait_until_loaded(120)  # versions load (and warm up) in the background
    return app


@pytest.fixture(scope="module")
def client(tiny_exports, tmp_path_factory):
    return _app(tiny_exports, tmp_path_factory.mktemp("state"), batch_timeout_ms=20).test_client()


def _probabilities(response):
    return [p["probabilities"] for p in response.get_json()["predictions"]]


def test_predict_answers_in_input_order_with_named_probabilities(client):
    response = client.post("/predict/cola", json={"instances": ["The cat sat.", {"sentence": "A dog barked."}]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["task"] == "cola" and body["model_version"] == 1 and len(body["predictions"]) == 2
    first = body["predictions"][0]
    assert set(first) == {"label", "label_id", "probabilities"} and set(first["probabilities"]) == {
        "unacceptable", "acceptable"}
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    alone = client.post("/predict/cola", json={"instances": ["A dog barked."]})
    assert _probabilities(alone)[0] == pytest.approx(body["predictions"][1]["probabilities"], abs=1e-5)


@pytest.mark.parametrize("raw, status, code, where", [
    (b'{"instances": [{"sentence": "\\ud800"}]}', 400, "invalid_text", "instances[0].sentence"),
    (b'{"instances": ["fine", "bad \\udfff here"]}', 400, "invalid_text", "instances[1]"),
    (b'{"instances": [{"sentence": 5}]}', 400, "bad_request", "instances[0].sentence"),
    (b'{"instances": [5]}', 400, "bad_request", "instances[0]"),
    (b'{"instances": [{"sentence": "a", "x": "b"}]}', 400, "bad_request", "instances[0]"),
    (b'{"instances": []}', 400, "bad_request", "instances"),
    (b'{"rows": ["a"]}', 400, "bad_request", "body"),
    (b'{"instances": ["a", "a", "a", "a", "a", "a", "a", "a", "a"]}', 413, "too_many_instances", "instances"),
    (b'{"instances": ["' + b"a" * 201 + b'"]}', 413, "text_too_long", "instances[0]"),
    (b"{not json", 400, "invalid_json", "JSON"),
    (b'{"instances": [NaN]}', 400, "invalid_json", "NaN"),
    (b"", 400, "invalid_json", "empty"),
])
def test_bad_bodies_get_a_4xx_naming_the_spot(client, raw, status, code, where):
    response = client.post("/predict/cola", data=raw, content_type="application/json")
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code and where in error["message"]


def test_one_bad_request_never_fails_the_requests_batched_with_it(client):
    """Valid and invalid requests at once, merged by the batcher: only the invalid one fails."""
    texts = [f"The committee met on day {i}." for i in range(12)]
    expected = {t: _probabilities(client.post("/predict/cola", json={"instances": [t]}))[0] for t in texts}
    bad = b'{"instances": [{"sentence": "\\ud800"}]}'
    results, barrier = {}, threading.Barrier(len(texts) + 4)

    def send(key, **kwargs):
        barrier.wait()
        results[key] = client.post("/predict/cola", **kwargs)

    threads = [threading.Thread(target=send, args=(t,), kwargs={"json": {"instances": [t]}}) for t in texts]
    threads += [threading.Thread(target=send, args=(f"bad{i}",), kwargs={"data": bad, "content_type": "text/plain"})
                for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for text in texts:
        assert results[text].status_code == 200
        assert _probabilities(results[text])[0] == pytest.approx(expected[text], abs=1e-4)
    assert all(results[f"bad{i}"].status_code == 400 for i in range(4))


def test_a_request_the_model_fails_on_alone_is_a_400_and_others_in_its_batch_succeed(client, monkeypatch):
    """Past validation, a failure the batcher isolates to one request is that request's error."""
    from serving.model_registry import LoadedModel

    real = LoadedModel.predict

    def picky(self, columns, signature=None):
        if any("poison" in text for text in columns.get("sentence", [])):
            import tensorflow as tf

            raise tf.errors.InvalidArgumentError(None, None, "cannot take poison")
        return real(self, columns, signature)

    monkeypatch.setattr(LoadedModel, "predict", picky)
    results, barrier = {}, threading.Barrier(6)

    def send(text):
        barrier.wait()
        results[text] = client.post("/predict/cola", json={"instances": [text]})

    texts = ["one fine text.", "two fine texts.", "poison pill.", "three.", "four.", "five."]
    threads = [threading.Thread(target=send, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["poison pill."].status_code == 400
    assert results["poison pill."].get_json()["error"]["code"] == "invalid_input"
    assert all(results[t].status_code == 200 for t in texts if t != "poison pill.")


def test_scoring_and_jobs_share_one_scoring_path(client):
    instances = [{"sentence1": f"Sentence {i}.", "sentence2": "Another one."} for i in range(8)]
    labels = ["entailment", 1] * 4
    direct = client.post("/score/rte", json={"instances": instances, "labels": labels})
    assert direct.status_code == 200
    direct = direct.get_json()
    assert direct["examples"] == {"validation": 8} and direct["score"] == direct["metrics"]["validation"]["accuracy"]
    created = client.post("/jobs", json={"task": "rte", "instances": instances, "labels": labels})
    assert created.status_code == 202
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(created.headers["Location"]).get_json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded" and job["result"] == direct
    many = client.post("/score", json={"tasks": {"rte": {"instances": instances, "labels": labels}}}).get_json()
    assert many["tasks"]["rte"] == direct and many["glue_score"] is None


def test_openapi_publishes_the_schemas_requests_are_checked_against(client):
    from serving import schemas

    spec = client.get("/openapi.json").get_json()
    body = spec["paths"]["/predict/{task}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    limits = schemas.Limits(8, 200)
    from glue_tf.tasks import TASKS

    assert schemas.predict_body(TASKS["cola"], limits) in body["anyOf"]
    tf_predict = spec["paths"]["/v1/models/{task}:predict"]["post"]["requestBody"]["content"]["application/json"]
    assert "signature_name" in tf_predict["schema"]["anyOf"][0]["properties"]
    score = spec["paths"]["/score/{task}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert any("splits" in variant["properties"] for per_task in score["anyOf"] for variant in per_task["anyOf"])
    assert "/v1/models/{task}/labels/{label}:classify" in spec["paths"]


def _only(tiny_exports, tmp_path, task: str):
    """A run folder with one task's export: an app over it loads one model, not four."""
    folder = tmp_path / "run"
    shutil.copytree(tiny_exports / "models" / task, folder / "models" / task)
    return folder


def test_a_token_guards_scoring_and_openapi_says_so(tiny_exports, tmp_path):
    client = _app(_only(tiny_exports, tmp_path, "rte"), tmp_path / "state", api_token="s3cret").test_client()
    body = {"instances": [{"sentence1": "a", "sentence2": "b"}], "labels": [1]}
    refused = client.post("/score/rte", json=body)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/score/rte", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    spec = client.get("/openapi.json").get_json()
    assert "401" in spec["paths"]["/score/{task}"]["post"]["responses"]
    assert spec["paths"]["/score/{task}"]["post"]["security"] == [{"bearer": []}]


def test_version_policy_and_labels_pin_versions(tiny_exports, tmp_path):
    models = _only(tiny_exports, tmp_path, "cola")
    shutil.copytree(models / "models" / "cola" / "1", models / "models" / "cola" / "2")
    client = _app(models, tmp_path / "state", version_policy=_policy("all"),
                  version_labels={"stable": 1, "canary": 2}).test_client()
    status = client.get("/v1/models/cola").get_json()["model_version_status"]
    assert [row["version"] for row in status] == ["2", "1"] and {row["state"] for row in status} == {"AVAILABLE"}
    assert client.get("/v1/models/cola/labels/stable").get_json()["model_version_status"][0]["version"] == "1"
    assert client.post("/predict/cola", json={"instances": ["x"]}).get_json()["model_version"] == 2
    pinned = client.post("/v1/models/cola/labels/stable:predict", json={"instances": ["x"]})
    assert pinned.status_code == 200 and len(pinned.get_json()["predictions"]) == 1
    missing = client.post("/v1/models/cola/versions/3:predict", json={"instances": ["x"]})
    assert missing.status_code == 404 and missing.get_json() == {"error": "Servable not found for request: Specific(cola, 3)"}
    unknown = client.get("/v1/models/cola/labels/beta")
    assert unknown.status_code == 400 and "beta" in unknown.get_json()["error"]

    latest = _app(models, tmp_path / "state2").test_client()  # TF Serving's default: the latest version only
    rows = latest.get("/v1/models/cola").get_json()["model_version_status"]
    assert [row["version"] for row in rows] == ["2"]
    assert latest.post("/v1/models/cola/versions/1:predict", json={"instances": ["x"]}).status_code == 404


def _policy(text):
    from serving.model_config import VersionPolicy

    return VersionPolicy.parse(text)


def test_b64_values_decode_to_the_same_answer(client):
    plain = client.post("/v1/models/cola:predict", json={"instances": ["A café in Paris."]}).get_json()
    encoded = base64.b64encode("A café in Paris.".encode()).decode()
    sent = client.post("/v1/models/cola:predict", json={"instances": [{"sentence": {"b64": encoded}}]}).get_json()
    assert sent["predictions"][0]["probabilities"] == pytest.approx(plain["predictions"][0]["probabilities"], abs=1e-6)
    bad = client.post("/v1/models/cola:predict", json={"instances": [{"sentence": {"b64": "//79"}}]})
    assert bad.status_code == 400 and "instances[0].sentence" in bad.get_json()["error"]


def test_jobs_are_listed_by_state_and_cancelled(tiny_exports, tmp_path):
    app = _app(_only(tiny_exports, tmp_path, "rte"), tmp_path / "state")
    app.extensions["glue_tf"].runner.stop()  # nothing scores: the jobs stay queued for this test
    client = app.test_client()
    body = {"task": "rte", "instances": [{"sentence1": "a", "sentence2": "b"}] * 3, "labels": [0, 1, 0]}
    first = client.post("/jobs", json=body).get_json()["id"]
    second = client.post("/jobs", json=body).get_json()["id"]
    listed = client.get("/jobs?status=queued").get_json()["jobs"]
    assert [job["id"] for job in listed] == [second, first]
    assert listed[0]["progress"] == {"done": 0, "total": 3}
    cancelled = client.delete(f"/jobs/{first}")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = client.delete(f"/jobs/{first}")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "job_finished"
    assert [job["id"] for job in client.get("/jobs?status=cancelled&limit=5").get_json()["jobs"]] == [first]
    assert [job["id"] for job in client.get("/jobs?limit=1").get_json()["jobs"]] == [second]
    assert client.get("/jobs?status=lost").status_code == 400
    assert client.get("/jobs?limit=0").status_code == 400
    assert client.delete("/jobs/" + "0" * 32).status_code == 404
    ready = client.get("/readyz").get_json()
    assert ready["job_store"] == {"backend": "sqlite", "available": True}
