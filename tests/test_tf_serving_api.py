"""TF Serving's REST API (tensorflow/serving ``g3doc/api_rest.md``), form by form, over real HTTP to gunicorn.

One server for the module (one worker) over tiny untrained exports: CoLA with
versions 1 and 2 (the same weights), STS-B and RTE with version 1, served with
version policy ``all`` and labels ``stable=1,canary=2``. Each documented request
form is sent as TF Serving's clients send it (bodies as raw bytes where the
Content-Type matters) and its answer checked against TF Serving's response form;
where this service deliberately differs (see docs/SERVING.md), the test pins
what it does instead.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import time
import uuid

import pytest

from support.server import Server, request

# A gunicorn server and ~90 requests: `make test-long` (CI runs it); tests/test_app.py covers the same
# routes in-process in `make test`.
pytestmark = pytest.mark.long

COLA_LABELS = ["unacceptable", "acceptable"]
RTE_LABELS = ["entailment", "not_entailment"]
TEXTS = ["The cat sat on the mat.", "Mat the on sat cat the.", "Café au lait, s'il vous plaît — ça va?"]
PREMISE = "A man is playing a guitar on the street."
HYPOTHESES = ["A man is playing music.", "The river flooded the small village after the storm."]
APPROX = {"abs": 1e-4}  # a request alone or merged with others is padded to another width: float noise only


@pytest.fixture(scope="module")
def server(tiny_exports, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("tf_serving_models")
    for task in ("cola", "stsb", "rte"):
        shutil.copytree(tiny_exports / "models" / task / "1", model_dir / "models" / task / "1")
    version_2 = model_dir / "models" / "cola" / "2"
    shutil.copytree(model_dir / "models" / "cola" / "1", version_2)
    metadata = json.loads((version_2 / "metadata.json").read_text(encoding="utf-8"))
    metadata["version"] = 2
    (version_2 / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    srv = Server(model_dir, tmp_path_factory.mktemp("tf_serving_state"), workers=1,
                 GLUE_TF_MODEL_VERSION_POLICY="all", GLUE_TF_MODEL_LABELS="stable=1,canary=2")
    try:
        yield srv.wait_until_up()
    finally:
        srv.stop()


# --- helpers -------------------------------------------------------------------------------

def get(server, path):
    return request(server.base, "GET", path)


def post(server, path, body):
    """POSTs ``body`` as JSON (Content-Type: application/json); ``(status, headers, parsed answer)``."""
    return request(server.base, "POST", path, body)


def ok(answer) -> dict:
    status, headers, body = answer
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    return body


def tf_error(answer, status: int, *fragments: str) -> str:
    """Asserts TF Serving's error form: the status, and a body of exactly ``{"error": "<non-empty message>"}``."""
    got, headers, body = answer
    assert got == status, body
    assert headers["Content-Type"].startswith("application/json"), body
    assert isinstance(body, dict) and list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str) and message.strip(), body
    for fragment in fragments:
        assert fragment in message
    return message


def send_raw(server, path, data: bytes, content_type: str | None, method="POST"):
    """Sends ``data`` with exactly this Content-Type, or with none at all (urllib would add a form type)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {"Content-Type": content_type} if content_type is not None else {}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), json.loads(payload)
    finally:
        connection.close()


def b64(text: str) -> dict:
    return {"b64": base64.b64encode(text.encode("utf-8")).decode("ascii")}


def version_row(version: str) -> dict:
    return {"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}


def cola_rows(server, texts=TEXTS, path="/v1/models/cola:predict") -> list[dict]:
    return ok(post(server, path, {"instances": [{"sentence": t} for t in texts]}))["predictions"]


def flat(values) -> list[float]:
    """Nested lists of numbers -> one flat list (``pytest.approx`` compares flat sequences only)."""
    if isinstance(values, (list, tuple)):
        return [x for value in values for x in flat(value)]
    return [values]


def assert_same_predictions(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected):
        assert set(mine) == set(theirs)
        for name, value in theirs.items():
            assert flat(mine[name]) == pytest.approx(flat(value), **APPROX), name


# --- model status -------------------------------------------------------------------------

def test_status_lists_every_loaded_version_newest_first(server):
    assert ok(get(server, "/v1/models/cola")) == {"model_version_status": [version_row("2"), version_row("1")]}
    assert ok(get(server, "/v1/models/stsb")) == {"model_version_status": [version_row("1")]}


@pytest.mark.parametrize("path, version", [
    ("/v1/models/cola/versions/1", "1"),
    ("/v1/models/cola/versions/2", "2"),
    ("/v1/models/cola/labels/stable", "1"),
    ("/v1/models/cola/labels/canary", "2"),
])
def test_status_of_one_version_or_label(server, path, version):
    assert ok(get(server, path)) == {"model_version_status": [version_row(version)]}


@pytest.mark.parametrize("path, status, message", [
    ("/v1/models/cola/versions/9", 404, "Could not find version 9 of model cola"),
    ("/v1/models/cola/labels/nope", 400, "Unrecognized servable version label: nope"),
    ("/v1/models/mrpc", 404, "Could not find any versions of model mrpc"),  # a task with no export here
    ("/v1/models/stsb/labels/canary", 404, "Servable not found for request: Specific(stsb, 2)"),  # label, no v2
    ("/v1/models/no_such_model", 404, "no_such_model"),
])
def test_status_errors(server, path, status, message):
    tf_error(get(server, path), status, message)


# --- model metadata -----------------------------------------------------------------------

def dims(tensor: dict) -> list[str]:
    assert tensor["tensor_shape"]["unknown_rank"] is False
    return [dim["size"] for dim in tensor["tensor_shape"]["dim"]]


@pytest.mark.parametrize("path, version", [
    ("/v1/models/cola/metadata", "2"),
    ("/v1/models/cola/versions/1/metadata", "1"),
    ("/v1/models/cola/labels/stable/metadata", "1"),
    ("/v1/models/cola/labels/canary/metadata", "2"),
])
def test_metadata_renders_the_signature_defs_as_tf_serving_does(server, path, version):
    body = ok(get(server, path))
    assert set(body) == {"model_spec", "metadata"}
    assert body["model_spec"] == {"name": "cola", "signature_name": "", "version": version}
    assert list(body["metadata"]) == ["signature_def"]
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert list(signature["inputs"]) == ["sentence"]
    sentence = signature["inputs"]["sentence"]
    assert sentence["dtype"] == "DT_STRING"
    assert sentence["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert sentence["name"] == "serving_default_sentence:0"
    outputs = signature["outputs"]
    assert set(outputs) == {"probabilities", "label_id", "logits"}
    assert (outputs["probabilities"]["dtype"], dims(outputs["probabilities"])) == ("DT_FLOAT", ["-1", "2"])
    assert (outputs["label_id"]["dtype"], dims(outputs["label_id"])) == ("DT_INT64", ["-1"])
    assert (outputs["logits"]["dtype"], dims(outputs["logits"])) == ("DT_FLOAT", ["-1", "2"])


def test_metadata_of_pair_and_regression_models(server):
    rte = ok(get(server, "/v1/models/rte/metadata"))["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(rte["inputs"]) == {"sentence1", "sentence2"}
    assert {tensor["dtype"] for tensor in rte["inputs"].values()} == {"DT_STRING"}
    stsb = ok(get(server, "/v1/models/stsb/metadata"))["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(stsb["outputs"]) == {"score", "raw_score"}
    assert (stsb["outputs"]["score"]["dtype"], dims(stsb["outputs"]["score"])) == ("DT_FLOAT", ["-1"])


@pytest.mark.parametrize("path, status, message", [
    ("/v1/models/cola/versions/9/metadata", 404, "Servable not found for request: Specific(cola, 9)"),
    ("/v1/models/cola/labels/nope/metadata", 400, "Unrecognized servable version label: nope"),
    ("/v1/models/mrpc/metadata", 404, "Servable not found for request: Latest(mrpc)"),
])
def test_metadata_errors(server, path, status, message):
    tf_error(get(server, path), status, message)


# --- predict ------------------------------------------------------------------------------

def test_predict_row_format_objects_and_bare_strings(server):
    objects = cola_rows(server)
    assert len(objects) == len(TEXTS)
    for row in objects:
        assert set(row) == {"probabilities", "label_id", "logits"}
        assert len(row["probabilities"]) == 2 and sum(row["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert row["label_id"] == max(range(2), key=lambda i: row["probabilities"][i])
        assert isinstance(row["label_id"], int)
    # the untrained models still answer differently per text, so order and mix-ups are visible
    assert objects[0]["probabilities"] != pytest.approx(objects[1]["probabilities"], **APPROX)
    # exactly TF Serving's one-input form: {"instances": ["foo", "bar"]}
    bare = ok(post(server, "/v1/models/cola:predict", {"instances": TEXTS}))["predictions"]
    assert_same_predictions(bare, objects)
    # each row is the answer for its own instance (order kept)
    for text, row in zip(TEXTS, objects):
        assert_same_predictions(cola_rows(server, [text]), [row])


def test_predict_columnar_format_agrees_with_row_format(server):
    rows = cola_rows(server)
    for inputs in ({"sentence": TEXTS}, TEXTS):
        outputs = ok(post(server, "/v1/models/cola:predict", {"inputs": inputs}))
        assert list(outputs) == ["outputs"]
        columns = outputs["outputs"]
        assert set(columns) == {"probabilities", "label_id", "logits"}
        assert_same_predictions([{name: columns[name][i] for name in columns} for i in range(len(TEXTS))], rows)


def test_predict_pair_and_regression_tasks_in_both_formats(server):
    pairs = [{"sentence1": PREMISE, "sentence2": h} for h in HYPOTHESES]
    rte_rows = ok(post(server, "/v1/models/rte:predict", {"instances": pairs}))["predictions"]
    assert [set(row) for row in rte_rows] == [{"probabilities", "label_id", "logits"}] * 2
    columns = ok(post(server, "/v1/models/rte:predict",
                      {"inputs": {"sentence1": [PREMISE] * 2, "sentence2": HYPOTHESES}}))["outputs"]
    assert_same_predictions([{name: columns[name][i] for name in columns} for i in range(2)], rte_rows)

    stsb_rows = ok(post(server, "/v1/models/stsb:predict", {"instances": pairs}))["predictions"]
    assert [set(row) for row in stsb_rows] == [{"score", "raw_score"}] * 2
    assert all(0.0 <= row["score"] <= 5.0 for row in stsb_rows)
    columns = ok(post(server, "/v1/models/stsb:predict",
                      {"inputs": {"sentence1": [PREMISE] * 2, "sentence2": HYPOTHESES}}))["outputs"]
    assert columns["score"] == pytest.approx([row["score"] for row in stsb_rows], **APPROX)


def test_signature_name(server):
    rows = cola_rows(server)
    named = ok(post(server, "/v1/models/cola:predict", {"signature_name": "serving_default", "instances": TEXTS}))
    assert_same_predictions(named["predictions"], rows)
    tf_error(post(server, "/v1/models/cola:predict", {"signature_name": "nope", "instances": TEXTS}), 400,
             'Serving signature name: "nope" not found in signature def')
    tf_error(post(server, "/v1/models/cola:classify", {"signature_name": "nope", "examples": [{"sentence": "x"}]}),
             400, '"nope"')


def served_version(server, request_id: str) -> int:
    """The model version that answered a request, from the service's JSON request log (by request id)."""
    deadline = time.monotonic() + 10
    while True:
        for line in server.log().splitlines():
            if request_id in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == request_id:
                    return record["model_version"]
        assert time.monotonic() < deadline, f"no request log line for {request_id}"
        time.sleep(0.2)


@pytest.mark.parametrize("pin, version", [
    ("", 2), ("/versions/1", 1), ("/versions/2", 2), ("/labels/stable", 1), ("/labels/canary", 2),
])
@pytest.mark.parametrize("verb, body", [
    ("predict", {"instances": TEXTS}),
    ("classify", {"examples": [{"sentence": t} for t in TEXTS]}),
])
def test_predict_and_classify_pinned_to_a_version_or_label(server, pin, version, verb, body):
    request_id = f"pin-{uuid.uuid4().hex}"
    status, headers, answer = request(server.base, "POST", f"/v1/models/cola{pin}:{verb}", body,
                                      headers={"X-Request-ID": request_id})
    assert status == 200, answer
    assert headers["X-Request-ID"] == request_id
    # both versions hold the same weights, so the answers agree; the log says which version answered
    if verb == "predict":
        assert_same_predictions(answer["predictions"], cola_rows(server))
    else:
        assert [[name for name, _ in result] for result in answer["result"]] == [COLA_LABELS] * len(TEXTS)
    assert served_version(server, request_id) == version


@pytest.mark.parametrize("path, status, message", [
    ("/v1/models/cola/versions/9:predict", 404, "Servable not found for request: Specific(cola, 9)"),
    ("/v1/models/cola/labels/nope:predict", 400, "Unrecognized servable version label: nope"),
    ("/v1/models/mrpc:predict", 404, "Servable not found for request: Latest(mrpc)"),
    ("/v1/models/no_such_model:predict", 404, "no_such_model"),
    ("/v1/models/cola/versions/9:classify", 404, "Servable not found for request: Specific(cola, 9)"),
])
def test_predict_on_a_missing_model_version_or_label(server, path, status, message):
    body = {"instances": ["x"]} if path.endswith(":predict") else {"examples": [{"sentence": "x"}]}
    if "mrpc" in path:
        body = {"instances": [{"sentence1": "x", "sentence2": "y"}]}
    tf_error(post(server, path, body), status, message)


def test_stsb_label_naming_a_version_it_lacks_is_404(server):
    body = {"instances": [{"sentence1": PREMISE, "sentence2": HYPOTHESES[0]}]}
    tf_error(post(server, "/v1/models/stsb/labels/canary:predict", body), 404,
             "Servable not found for request: Specific(stsb, 2)")


# --- binary values: {"b64": ...} ------------------------------------------------------------

def test_b64_values_give_the_answers_of_the_plain_texts(server):
    rows = cola_rows(server)
    for instances in ([b64(t) for t in TEXTS], [{"sentence": b64(t)} for t in TEXTS]):
        got = ok(post(server, "/v1/models/cola:predict", {"instances": instances}))["predictions"]
        assert_same_predictions(got, rows)
    columns = ok(post(server, "/v1/models/cola:predict", {"inputs": {"sentence": [b64(t) for t in TEXTS]}}))
    expected = flat([r["probabilities"] for r in rows])
    assert flat(columns["outputs"]["probabilities"]) == pytest.approx(expected, **APPROX)
    classified = ok(post(server, "/v1/models/cola:classify", {"examples": [{"sentence": b64(t)} for t in TEXTS]}))
    assert flat([[p for _, p in result] for result in classified["result"]]) == pytest.approx(expected, **APPROX)
    pair = {"sentence1": b64(PREMISE), "sentence2": HYPOTHESES[0]}
    plain = {"sentence1": PREMISE, "sentence2": HYPOTHESES[0]}
    assert ok(post(server, "/v1/models/stsb:regress", {"examples": [pair]}))["result"] == \
        pytest.approx(ok(post(server, "/v1/models/stsb:regress", {"examples": [plain]}))["result"], **APPROX)


@pytest.mark.parametrize("body, fragments", [
    ({"instances": [{"b64": "not base64!"}]}, ("instances[0]", "invalid base64")),
    ({"instances": [{"sentence": {"b64": "//4="}}]}, ("instances[0].sentence", "invalid UTF-8")),
    ({"inputs": {"sentence": ["fine", {"b64": "gA=="}]}}, ("inputs.sentence[1]", "invalid UTF-8")),
    ({"instances": [{"b64": "aGk=", "extra": "x"}]}, ()),
])
def test_bad_b64_values_are_400(server, body, fragments):
    tf_error(post(server, "/v1/models/cola:predict", body), 400, *fragments)


def test_bad_b64_in_classify_examples_is_400(server):
    body = {"context": {"sentence1": {"b64": "wA=="}}, "examples": [{"sentence2": "fine"}]}
    tf_error(post(server, "/v1/models/rte:classify", body), 400, "examples[0].sentence1", "invalid UTF-8")


# --- content types ------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded",  # what TF Serving's documented `curl -d '...' -X POST` sends
    None,  # no Content-Type header at all
    "text/plain",
    "application/json; charset=utf-8",
])
def test_any_content_type_is_read_as_json(server, content_type):
    rows = cola_rows(server)
    data = json.dumps({"instances": TEXTS}, ensure_ascii=False).encode("utf-8")
    status, _, body = send_raw(server, "/v1/models/cola:predict", data, content_type)
    assert status == 200, body
    assert_same_predictions(body["predictions"], rows)
    status, _, body = send_raw(server, "/v1/models/cola:classify",
                               json.dumps({"examples": [{"sentence": TEXTS[0]}]}).encode(), content_type)
    assert status == 200, body
    assert body["result"][0][0][1] == pytest.approx(rows[0]["probabilities"][0], **APPROX)


def test_form_content_type_is_not_parsed_as_a_form(server):
    """A body that looks like a form (``a=b&c=d``) is still JSON to parse: a 400 in TF Serving's form."""
    answer = send_raw(server, "/v1/models/cola:predict", b"instances=foo&x=1", "application/x-www-form-urlencoded")
    tf_error(answer, 400)


# --- classify and regress -----------------------------------------------------------------

def test_classify_gives_label_score_pairs_equal_to_predict(server):
    rows = cola_rows(server)
    body = ok(post(server, "/v1/models/cola:classify", {"examples": [{"sentence": t} for t in TEXTS]}))
    assert list(body) == ["result"]
    assert len(body["result"]) == len(TEXTS)
    for result, row in zip(body["result"], rows):
        assert [name for name, _ in result] == COLA_LABELS
        assert all(isinstance(pair, list) and len(pair) == 2 for pair in result)
        scores = [score for _, score in result]
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)
        assert scores == pytest.approx(row["probabilities"], **APPROX)
    named = ok(post(server, "/v1/models/cola:classify",
                    {"signature_name": "serving_default", "examples": [{"sentence": TEXTS[0]}]}))
    assert [name for name, _ in named["result"][0]] == COLA_LABELS
    assert [s for _, s in named["result"][0]] == pytest.approx([s for _, s in body["result"][0]], **APPROX)


def test_classify_context_is_shared_by_every_example(server):
    with_context = ok(post(server, "/v1/models/rte:classify",
                           {"context": {"sentence1": PREMISE}, "examples": [{"sentence2": h} for h in HYPOTHESES]}))
    inline = ok(post(server, "/v1/models/rte:classify",
                     {"examples": [{"sentence1": PREMISE, "sentence2": h} for h in HYPOTHESES]}))
    assert len(with_context["result"]) == 2
    for shared, alone in zip(with_context["result"], inline["result"]):
        assert [name for name, _ in shared] == [name for name, _ in alone] == RTE_LABELS
        assert [s for _, s in shared] == pytest.approx([s for _, s in alone], **APPROX)
    predicted = ok(post(server, "/v1/models/rte:predict",
                        {"instances": [{"sentence1": PREMISE, "sentence2": h} for h in HYPOTHESES]}))["predictions"]
    assert flat([[s for _, s in r] for r in inline["result"]]) == \
        pytest.approx(flat([p["probabilities"] for p in predicted]), **APPROX)


@pytest.mark.parametrize("path, body, fragments", [
    ("/v1/models/rte:classify",
     {"context": {"sentence1": PREMISE}, "examples": [{"sentence1": "again", "sentence2": "x"}]},
     ("examples[0]", "sentence1", "context")),
    ("/v1/models/stsb:regress",
     {"context": {"sentence2": "x"}, "examples": [{"sentence1": "y", "sentence2": "z"}]},
     ("examples[0]", "sentence2", "context")),
    ("/v1/models/rte:classify", {"examples": [{"sentence1": PREMISE}]}, ("examples[0]", "sentence2")),
    ("/v1/models/cola:classify", {"examples": []}, ("examples",)),
    ("/v1/models/cola:classify", {"instances": ["x"]}, ()),
    ("/v1/models/cola:classify", {"examples": [{"sentence": "x", "unknown_feature": "y"}]}, ("unknown_feature",)),
])
def test_bad_classify_and_regress_bodies_are_400(server, path, body, fragments):
    tf_error(post(server, path, body), 400, *fragments)


def test_regress_gives_the_score_of_predict(server):
    pairs = [{"sentence1": PREMISE, "sentence2": h} for h in HYPOTHESES]
    predicted = ok(post(server, "/v1/models/stsb:predict", {"instances": pairs}))["predictions"]
    body = ok(post(server, "/v1/models/stsb:regress", {"examples": pairs}))
    assert list(body) == ["result"]
    assert all(isinstance(score, float) for score in body["result"])
    assert body["result"] == pytest.approx([row["score"] for row in predicted], **APPROX)
    with_context = ok(post(server, "/v1/models/stsb:regress",
                           {"context": {"sentence1": PREMISE}, "examples": [{"sentence2": h} for h in HYPOTHESES]}))
    assert with_context["result"] == pytest.approx(body["result"], **APPROX)


def test_classify_and_regress_on_the_wrong_kind_of_model_are_400(server):
    tf_error(post(server, "/v1/models/cola:regress", {"examples": [{"sentence": "x"}]}), 400, "regress")
    pair = {"sentence1": PREMISE, "sentence2": HYPOTHESES[0]}
    tf_error(post(server, "/v1/models/stsb:classify", {"examples": [pair]}), 400, "classify")


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, fragments", [
    (b'{"instances": [', ("JSON",)),
    (b"", ()),
    (b"   ", ()),
    (b"\xff\xfe not utf-8", ()),
    (b'["The cat sat."]', ()),  # the body must be an object
    (b'{"instances": ["x"], "inputs": ["x"]}', ("instances", "inputs")),
    (b'{"signature_name": "serving_default"}', ("instances", "inputs")),
    (b'{"instances": []}', ("instances",)),
    (b'{"instances": "x"}', ("instances",)),
    (b'{"instances": [{"sentence": "x", "other": "y"}]}', ("instances[0]",)),
    (b'{"inputs": {"sentence1": ["a", "b"], "sentence2": ["c"]}}', ()),  # cola has no such fields
    (b'{"instances": [NaN]}', ("NaN",)),  # TF Serving takes NaN/Infinity (float tensors); text models refuse
    (b'{"instances": [Infinity]}', ("Infinity",)),
    (b'{"instances": ["\\ud800"]}', ("instances[0]", "surrogate")),
    (b'{"instances": [{"sentence": "ok \\udfff"}]}', ("instances[0].sentence", "surrogate")),
])
def test_bad_predict_bodies_are_400_in_tf_servings_form(server, raw, fragments):
    tf_error(send_raw(server, "/v1/models/cola:predict", raw, "application/json"), 400, *fragments)


def test_unequal_columns_are_400(server):
    body = {"inputs": {"sentence1": [PREMISE, PREMISE], "sentence2": HYPOTHESES[:1]}}
    tf_error(post(server, "/v1/models/rte:predict", body), 400, "same length")


def test_nul_characters_are_accepted(server):
    body = ok(post(server, "/v1/models/cola:predict", {"instances": ["a\u0000b", "\u0000"]}))
    assert len(body["predictions"]) == 2


def test_over_long_text_is_413_in_tf_servings_form(server):
    long_text = "a " * 5001  # over the default GLUE_TF_MAX_TEXT_CHARS of 10000
    tf_error(post(server, "/v1/models/cola:predict", {"instances": [long_text]}), 413, "instances[0]")
    tf_error(post(server, "/v1/models/cola:predict", {"instances": [b64(long_text)]}), 413, "instances[0]")


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/v1/models/cola"),
    ("POST", "/v1/models/cola"),
    ("PUT", "/v1/models/cola/metadata"),
    ("POST", "/v1/models/cola/versions/1/metadata"),
    ("PUT", "/v1/models/cola:predict"),
    ("DELETE", "/v1/models/cola/labels/stable:classify"),
    ("GET", "/v1/models/cola:predict"),
    ("GET", "/v1/models/cola/versions/1:regress"),
])
def test_a_wrong_http_method_is_405_in_tf_servings_form(server, method, path):
    tf_error(send_raw(server, path, b'{"instances": ["x"]}', "application/json", method=method), 405)


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/v1/models/cola", {"GET"}),
    ("GET", "/v1/models/cola:predict", {"POST"}),
])
def test_405_names_the_allowed_methods(server, method, path, allowed):
    status, headers, _ = send_raw(server, path, b"{}", "application/json", method=method)
    assert status == 405
    assert "Allow" in headers, headers  # RFC 9110 section 15.5.6: a 405 MUST carry Allow
    assert allowed <= {m.strip() for m in headers["Allow"].split(",")}


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/models/cola/versions/1/labels/stable"),
    ("GET", "/v1/models/cola/versions/one"),
    ("GET", "/v1/models/cola:explain"),
    ("POST", "/v1/models/cola:explain"),
])
def test_unknown_urls_under_v1_models_are_refused_in_tf_servings_form(server, method, path):
    """TF Serving answers 400 "Malformed request: <method> <path>"; a 404 is as good. Not a 405: no method fits."""
    status, _, body = send_raw(server, path, b'{"instances": ["x"]}', "application/json", method=method)
    assert status in (400, 404), body
    tf_error((status, {"Content-Type": "application/json"}, body), status)


def test_the_projects_own_routes_keep_their_richer_errors(server):
    status, _, body = send_raw(server, "/predict/cola", b'{"instances": [', "application/json")
    assert status == 400
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "invalid_json" and body["error"]["message"]
